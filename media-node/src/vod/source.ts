// Reading an upload's source (a source can be gigabytes, so always streamed): from the bucket the edge stored it in
// (S3 API; R2 in production) or, in local runs, from the edge over HTTP; the fs driver's folder is read in place.
// Every way reads byte ranges, so FFmpeg can start on a source that is still downloading (source-server.ts).

import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { GetObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import { FsObjectStore } from "../storage/fs-store.ts";
import { S3ObjectStore } from "../storage/s3-store.ts";
import type { ObjectStore } from "../storage/types.ts";

/** The source is not in storage: the upload was deleted (or never completed). Retrying cannot bring it back. */
export class SourceMissingError extends Error {
  override name = "SourceMissingError";
}

/** Where sources are read from: the node's bucket, or the edge over HTTP (local runs). */
export type SourceLocation = { kind: "store" } | { kind: "http"; baseUrl: string; token: string | undefined };

/** An upload's source, read by byte ranges where it is stored. */
export interface SourceReader {
  readonly size: number;
  /** a local file holding the whole source (the fs driver): read it in place, nothing to download */
  readonly localPath?: string;
  /** bytes `start`..`end` inclusive (to the last byte without `end`) */
  read(start: number, end?: number, signal?: AbortSignal): Promise<Readable>;
}

const rangeHeader = (start: number, end?: number) => `bytes=${start}-${end ?? ""}`;
const missing = (key: string) => new SourceMissingError(`the uploaded file '${key}' is not in storage`);

function httpReader(loc: { baseUrl: string; token: string | undefined }, key: string) {
  const url = `${loc.baseUrl.replace(/\/+$/, "")}/${key}`;
  const auth: Record<string, string> = loc.token ? { authorization: `Bearer ${loc.token}` } : {};
  return {
    url,
    async head(): Promise<number | null> {
      const res = await fetch(url, { method: "HEAD", headers: auth });
      if (res.status === 404) return null;
      const size = Number(res.headers.get("content-length"));
      if (!res.ok || !Number.isSafeInteger(size)) throw new Error(`HEAD ${url} answered ${res.status}${res.ok ? " without a length" : ""}`);
      return size;
    },
    async read(size: number, start: number, end?: number, signal?: AbortSignal): Promise<Readable> {
      const whole = start === 0 && (end === undefined || end >= size - 1);
      const res = await fetch(url, { headers: { ...auth, ...(whole ? {} : { range: rangeHeader(start, end) }) }, ...(signal ? { signal } : {}) });
      if (res.status === 404) throw missing(key);
      if ((whole ? !res.ok : res.status !== 206) || !res.body) throw new Error(`GET ${url} (${rangeHeader(start, end)}) answered ${res.status}`);
      return Readable.fromWeb(res.body as import("node:stream/web").ReadableStream);
    },
  };
}

/** Opens the source for reading; rejects with SourceMissingError when it is not stored. */
export async function openSource(store: ObjectStore, key: string, location: SourceLocation = { kind: "store" }): Promise<SourceReader> {
  if (location.kind === "http") {
    const http = httpReader(location, key);
    const size = await http.head();
    if (size === null) throw missing(key);
    return { size, read: (start, end, signal) => http.read(size, start, end, signal) };
  }
  if (store instanceof FsObjectStore) {
    const path = store.pathOf(key);
    const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT" || error.code === "ENOTDIR") return null;
      throw error;
    });
    if (!info) throw missing(key);
    // Something is stored under the key but it cannot be read as a file: storage's fault, worth a retry.
    if (!info.isFile()) throw new Error(`the stored source '${key}' cannot be read (EISDIR: not a file)`);
    return { size: info.size, localPath: path, read: async (start, end) => createReadStream(path, { start, ...(end !== undefined ? { end } : {}) }) };
  }
  if (store instanceof S3ObjectStore) {
    const notFound = (error: unknown) => {
      const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
      return e.name === "NoSuchKey" || e.name === "NotFound" || e.$metadata?.httpStatusCode === 404;
    };
    let size: number;
    try {
      const head = await store.client.send(new HeadObjectCommand({ Bucket: store.bucket, Key: key }));
      size = head.ContentLength ?? 0;
    } catch (error) {
      if (notFound(error)) throw missing(key);
      throw error;
    }
    return {
      size,
      async read(start, end, signal) {
        const whole = start === 0 && (end === undefined || end >= size - 1);
        try {
          const out = await store.client.send(new GetObjectCommand({ Bucket: store.bucket, Key: key, ...(whole ? {} : { Range: rangeHeader(start, end) }) }), signal ? { abortSignal: signal } : {});
          if (!out.Body) throw new Error(`storage answered no body for '${key}'`);
          return out.Body as Readable;
        } catch (error) {
          if (notFound(error)) throw missing(key);
          throw error;
        }
      },
    };
  }
  throw new Error(`no way to read sources from a '${store.kind}' store`);
}

/** Copies object `key` to `file`; resolves with its size. */
export async function fetchSource(store: ObjectStore, key: string, file: string, location: SourceLocation = { kind: "store" }): Promise<number> {
  const reader = await openSource(store, key, location);
  await pipeline(await reader.read(0), createWriteStream(file));
  return (await stat(file)).size;
}

/**
 * Whether the upload's source is still stored. Deleting a video removes its source before anything else, so a
 * source gone while its job runs means the video was deleted: the node stops and removes what it wrote.
 * Throws when storage cannot answer (that proves nothing either way).
 */
export async function sourceExists(store: ObjectStore, key: string, location: SourceLocation = { kind: "store" }): Promise<boolean> {
  if (location.kind === "http") return (await httpReader(location, key).head()) !== null;
  return (await store.head(key)) !== null;
}
