// Reading an upload's source onto local disk, streamed (a source can be gigabytes): from the bucket the edge
// stored it in (S3 API; R2 in production) or, with the fs driver in local runs, from the storage folder.

import { createWriteStream } from "node:fs";
import { copyFile, stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { FsObjectStore } from "../storage/fs-store.ts";
import { S3ObjectStore } from "../storage/s3-store.ts";
import type { ObjectStore } from "../storage/types.ts";

/** The source is not in storage: the upload was deleted (or never completed). Retrying cannot bring it back. */
export class SourceMissingError extends Error {
  override name = "SourceMissingError";
}

/** Where sources are read from: the node's bucket, or the edge over HTTP (local runs). */
export type SourceLocation = { kind: "store" } | { kind: "http"; baseUrl: string; token: string | undefined };

/** GET `<baseUrl>/<key>` with the edge's internal token, streamed to `file`. */
async function fetchOverHttp(loc: { baseUrl: string; token: string | undefined }, key: string, file: string): Promise<number> {
  const url = `${loc.baseUrl.replace(/\/+$/, "")}/${key}`;
  const res = await fetch(url, { headers: loc.token ? { authorization: `Bearer ${loc.token}` } : {} });
  if (res.status === 404) throw new SourceMissingError(`the uploaded file '${key}' is not in storage`);
  if (!res.ok || !res.body) throw new Error(`GET ${url} answered ${res.status}`);
  await pipeline(Readable.fromWeb(res.body as import("node:stream/web").ReadableStream), createWriteStream(file));
  return (await stat(file)).size;
}

/** Copies object `key` to `file`; resolves with its size. */
export async function fetchSource(store: ObjectStore, key: string, file: string, location: SourceLocation = { kind: "store" }): Promise<number> {
  if (location.kind === "http") return fetchOverHttp(location, key, file);
  if (store instanceof FsObjectStore) {
    try {
      await copyFile(store.pathOf(key), file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new SourceMissingError(`the uploaded file '${key}' is not in storage`);
      throw error;
    }
    return (await stat(file)).size;
  }
  if (store instanceof S3ObjectStore) {
    let out;
    try {
      out = await store.client.send(new GetObjectCommand({ Bucket: store.bucket, Key: key }));
    } catch (error) {
      const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.name === "NoSuchKey" || e.$metadata?.httpStatusCode === 404) throw new SourceMissingError(`the uploaded file '${key}' is not in storage`);
      throw error;
    }
    if (!out.Body) throw new Error(`storage answered no body for '${key}'`);
    await pipeline(out.Body as Readable, createWriteStream(file));
    return (await stat(file)).size;
  }
  throw new Error(`no way to read sources from a '${store.kind}' store`);
}

/**
 * Whether the upload's source is still stored. Deleting a video removes its source before anything else, so a
 * source gone while its job runs means the video was deleted: the node stops and removes what it wrote.
 * Throws when storage cannot answer (that proves nothing either way).
 */
export async function sourceExists(store: ObjectStore, key: string, location: SourceLocation = { kind: "store" }): Promise<boolean> {
  if (location.kind === "http") {
    const url = `${location.baseUrl.replace(/\/+$/, "")}/${key}`;
    const res = await fetch(url, { method: "HEAD", headers: location.token ? { authorization: `Bearer ${location.token}` } : {} });
    if (res.status === 404) return false;
    if (!res.ok) throw new Error(`HEAD ${url} answered ${res.status}`);
    return true;
  }
  return (await store.head(key)) !== null;
}
