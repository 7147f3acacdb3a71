// Turning a PutBody into what each driver needs, in one place, so "a string is content, { file } is a path"
// holds identically for fs and s3.

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { LocalFileError } from "./errors.ts";
import type { PutBody } from "./types.ts";

export type PreparedBody =
  | { kind: "bytes"; bytes: Uint8Array; size: number }
  | { kind: "file"; path: string; size: number }
  | { kind: "stream"; stream: Readable; size: undefined };

/** Normalises a body. Files are stat'ed up front: a missing file is a LocalFileError (not retryable), not a storage failure. */
export async function prepareBody(body: PutBody): Promise<PreparedBody> {
  if (typeof body === "string") {
    const bytes = new TextEncoder().encode(body);
    return { kind: "bytes", bytes, size: bytes.byteLength };
  }
  if (body instanceof Uint8Array) return { kind: "bytes", bytes: body, size: body.byteLength };
  if (body instanceof Readable) return { kind: "stream", stream: body, size: undefined };
  if (typeof body === "object" && body !== null && typeof (body as { file?: unknown }).file === "string") {
    const path = (body as { file: string }).file;
    try {
      const info = await stat(path);
      if (!info.isFile()) throw new Error("not a regular file");
      return { kind: "file", path, size: info.size };
    } catch (error) {
      throw new LocalFileError(path, error);
    }
  }
  throw new TypeError("put body must be a Uint8Array, a string (content), { file: path } or a Readable");
}

/** A fresh readable for the body (files are opened anew on each call, so a retried attempt re-reads from the start). */
export function bodyStream(body: PreparedBody): Readable {
  if (body.kind === "bytes") return Readable.from([body.bytes]);
  if (body.kind === "file") return createReadStream(body.path);
  return body.stream;
}
