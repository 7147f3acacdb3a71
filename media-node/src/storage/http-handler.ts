// Serves the fs driver's objects over the media node's HTTP at /media/<key>, the way a CDN in front of a
// bucket would: stored content type and Cache-Control, CORS for browser players (hls.js fetches cross-origin),
// single byte ranges (Safari/AVPlayer probe with Range: bytes=0-1), ETag revalidation, 404 for missing.
//
// The path comes from the network, so it is decoded segment by segment and every segment must pass the key
// rules BEFORE touching the disk: `..`, `%2e%2e`, `%2f` smuggled inside a segment, backslashes, NUL and absolute
// paths are all refused with 400, never resolved.

import { createReadStream } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { checkObjectKey } from "./keys.ts";
import type { FsObjectStore } from "./fs-store.ts";

export interface MediaHandlerOptions {
  /** URL path prefix the handler owns (default "/media/") */
  prefix?: string;
  /** Access-Control-Allow-Origin (default "*": playback URLs are public; signed playback is the edge's job) */
  allowOrigin?: string;
}

/** A node:http handler. Resolves true when it answered, false when the URL is not under `prefix` (let the caller route it). */
export type MediaHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

export type KeyFromPath = { ok: true; key: string } | { ok: false; reason: string };

/** Pure: the object key a request path names, or why it names none. `rawPath` is the URL path, still percent-encoded. */
export function keyFromRequestPath(rawPath: string, prefix: string): KeyFromPath {
  if (!rawPath.startsWith(prefix)) return { ok: false, reason: `path is not under ${prefix}` };
  const segments = rawPath.slice(prefix.length).split("/");
  const decoded: string[] = [];
  for (const segment of segments) {
    let value: string;
    try {
      value = decodeURIComponent(segment);
    } catch {
      return { ok: false, reason: "path has malformed percent-encoding" };
    }
    // A '/' or '\' that only appears after decoding was smuggled in (%2f, %5c): refuse rather than re-split.
    if (value.includes("/") || value.includes("\\")) return { ok: false, reason: "path segment contains an encoded separator" };
    decoded.push(value);
  }
  const key = decoded.join("/");
  const check = checkObjectKey(key);
  return check.ok ? { ok: true, key } : { ok: false, reason: check.reason };
}

export type ByteRange = { start: number; end: number };

/**
 * Pure: parses a Range header against an object of `size` bytes.
 * undefined → serve the whole object (no header, or a form we do not do, like multiple ranges: RFC 9110 lets
 * a server ignore Range); "unsatisfiable" → 416.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | "unsatisfiable" | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, startText = "", endText = ""] = match;
  if (startText === "" && endText === "") return undefined;
  if (startText === "") {
    // suffix range: the last N bytes
    const length = Number(endText);
    if (length === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - length), end: size - 1 };
  }
  const start = Number(startText);
  const end = endText === "" ? size - 1 : Math.min(Number(endText), size - 1);
  if (start >= size || end < start) return "unsatisfiable";
  return { start, end };
}

export function createMediaHandler(store: FsObjectStore, options: MediaHandlerOptions = {}): MediaHandler {
  const prefix = options.prefix ?? "/media/";
  const allowOrigin = options.allowOrigin ?? "*";

  return async (req, res) => {
    const rawPath = (req.url ?? "/").split("?")[0] ?? "/";
    if (!rawPath.startsWith(prefix)) return false;

    res.setHeader("Access-Control-Allow-Origin", allowOrigin);
    res.setHeader("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
    res.setHeader("Access-Control-Allow-Headers", "Range, If-None-Match");
    res.setHeader("Access-Control-Expose-Headers", "Content-Length, Content-Range, Accept-Ranges, ETag");
    res.setHeader("Access-Control-Max-Age", "86400");
    // Objects are user-influenced bytes: never let a browser guess a more dangerous type than the stored one.
    res.setHeader("X-Content-Type-Options", "nosniff");
    if (allowOrigin !== "*") res.setHeader("Vary", "Origin");

    if (req.method === "OPTIONS") return end(res, 204);
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD, OPTIONS");
      return end(res, 405, "method not allowed\n");
    }

    const parsed = keyFromRequestPath(rawPath, prefix);
    if (!parsed.ok) return end(res, 400, `bad media path: ${parsed.reason}\n`);

    const info = await store.head(parsed.key).catch(() => null);
    if (!info) return end(res, 404, "not found\n");

    res.setHeader("Content-Type", info.contentType);
    if (info.cacheControl) res.setHeader("Cache-Control", info.cacheControl);
    if (info.etag) res.setHeader("ETag", info.etag);
    if (info.lastModified) res.setHeader("Last-Modified", info.lastModified.toUTCString());
    res.setHeader("Accept-Ranges", "bytes");

    if (info.etag && req.headers["if-none-match"]?.split(/\s*,\s*/).includes(info.etag)) return end(res, 304);

    const range = parseRange(req.headers.range, info.size);
    if (range === "unsatisfiable") {
      res.setHeader("Content-Range", `bytes */${info.size}`);
      return end(res, 416, "range not satisfiable\n");
    }
    const start = range?.start ?? 0;
    const last = range?.end ?? info.size - 1;
    res.statusCode = range ? 206 : 200;
    if (range) res.setHeader("Content-Range", `bytes ${start}-${last}/${info.size}`);
    res.setHeader("Content-Length", String(info.size === 0 ? 0 : last - start + 1));
    if (req.method === "HEAD" || info.size === 0) {
      res.end();
      return true;
    }
    try {
      await pipeline(createReadStream(store.pathOf(parsed.key), { start, end: last }), res);
    } catch {
      // The client went away mid-body, or the object was deleted between stat and open: headers are gone,
      // so the only honest thing left is to cut the connection.
      res.destroy();
    }
    return true;
  };
}

function end(res: ServerResponse, status: number, text?: string): true {
  res.statusCode = status;
  if (text) {
    res.setHeader("Content-Type", "text/plain; charset=utf-8");
    res.setHeader("Content-Length", String(Buffer.byteLength(text)));
    res.end(text);
  } else res.end();
  return true;
}
