// The storage contract of the media node. The live pipeline (ingest/transcode) decides WHAT to store and WHEN;
// everything behind this interface decides HOW: an `fs` folder for local runs, or `s3` for R2 / any S3 endpoint.
// Both drivers behave the same for a caller, so the pipeline and its tests never care which one is configured.

import type { Readable } from "node:stream";

/**
 * What to store. A string is TEXT CONTENT (a playlist), never a path: paths are passed as `{ file }` so a
 * playlist body can never be mistaken for a file name. `{ file }` is re-read on every attempt, which is what
 * makes retries of large segments cheap on memory.
 */
export type PutBody = Uint8Array | string | { file: string } | Readable;

export interface PutOptions {
  /** MIME type; when absent it is derived from the key's extension (see content-types.ts) */
  contentType?: string;
  /** stored with the object and served back (segments: immutable for a year; live playlists: ~1 s) */
  cacheControl?: string;
  /** aborts the attempt (the uploader uses it for its per-attempt timeout) */
  signal?: AbortSignal;
}

/** What a stored object looks like from the outside, identical for both drivers. */
export interface ObjectInfo {
  key: string;
  size: number;
  contentType: string;
  cacheControl: string | undefined;
  /** opaque validator (S3 ETag, or size+mtime for fs) */
  etag: string | undefined;
  lastModified: Date | undefined;
}

export interface StoredObject extends ObjectInfo {
  body: Uint8Array;
}

export type StorageDriverKind = "fs" | "s3";

export interface ObjectStore {
  readonly kind: StorageDriverKind;
  /**
   * Stores `body` under `key`, replacing what was there. Resolves once the object is durable and readable in
   * full (fs: renamed into place; s3: PutObject answered 200). Readers never see a half-written object.
   * Throws StorageKeyError for a bad key (never retry that) and StorageError for everything else.
   */
  put(key: string, body: PutBody, options?: PutOptions): Promise<void>;
  /** The whole object, or null when it does not exist. For tests and small objects (playlists). */
  get(key: string): Promise<StoredObject | null>;
  /** Metadata only, or null when it does not exist. */
  head(key: string): Promise<ObjectInfo | null>;
  /** Removes the object; deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Keys under `prefix` (a "folder" such as `live/abc/`), sorted. */
  list(prefix: string): Promise<string[]>;
  /** Resolves when storage is reachable and usable (for /healthz); throws with the reason otherwise. */
  ping(): Promise<void>;
  /** The URL a player uses to fetch `key` (fs: the node's /media/ route; s3: S3_PUBLIC_BASE_URL/<key>). */
  publicUrl(key: string): string;
  /** Releases sockets / handles. */
  close(): Promise<void>;
}

/** Metadata given with an upload; the same as PutOptions minus the per-attempt signal. */
export interface UploadMeta {
  contentType?: string;
  cacheControl?: string;
  /** keep the local file after it is stored (default: delete it, see UPLOAD_KEEP_LOCAL) */
  keepLocal?: boolean;
  /**
   * For objects rewritten in place (live playlists): earlier uploads of the same key that have not started yet
   * are dropped in favour of this one, and their promises settle with it. During an outage that keeps one
   * pending playlist per key instead of one per segment. Default false (every version is stored in order).
   */
  replaceQueued?: boolean;
}

/** Events a ReliableUploader emits, so the node can feed prom-client and logs without the uploader knowing either. */
export interface UploaderEvents {
  /** an object is stored: latency is from upload() call to stored, including waiting and retries */
  uploaded: [{ key: string; bytes: number; latencyMs: number; attempts: number; attemptMs: number }];
  /** one attempt failed; another follows after `retryInMs` */
  failed: [{ key: string; attempt: number; error: Error; retryInMs: number }];
  /** work refused up front (spool full, bad key, missing file); the caller's promise rejects with the same error */
  rejected: [{ key: string; error: Error }];
  /** storage went from reachable to failing, or back (drives health and a log line, not per-attempt noise) */
  storage: [{ up: boolean; error?: Error }];
}

export interface UploaderStats {
  /** uploads accepted and not yet stored (waiting, retrying or in flight) */
  pending: number;
  /** their bytes: what the spool holds on local disk / in memory right now */
  pendingBytes: number;
  inFlight: number;
  uploaded: number;
  failures: number;
  bytesOut: number;
  /** false while the last attempt failed and none has succeeded since */
  storageUp: boolean;
}

/**
 * Reliable delivery of local files to an ObjectStore (implemented by ReliableUploader in uploader.ts).
 * upload() resolves once the object is stored, however long storage is down; it rejects only when retrying
 * cannot help (bad key, missing local file, spool full, uploader closed). Uploads of the SAME key are stored
 * in call order (a playlist never goes back in time); different keys proceed in parallel. To store a playlist
 * only after its segments, await the segments' promises first.
 */
export interface Uploader {
  /** store the file at `localPath` under `key`; the file must stay untouched until the promise settles, and is deleted after (unless keepLocal) */
  upload(key: string, localPath: string, meta?: UploadMeta): Promise<void>;
  /** same guarantees for a small in-memory body (playlists); counted in the spool like a file */
  uploadBody(key: string, body: Uint8Array | string, meta?: UploadMeta): Promise<void>;
  /** resolves true when everything accepted so far is stored; false if `timeoutMs` passed first (nothing is dropped) or close() was called */
  drain(timeoutMs?: number): Promise<boolean>;
  /** stops retrying: pending uploads reject with UploaderClosedError and their local files are kept */
  close(): Promise<void>;
  /** re-queues uploads a previous run accepted but did not store (with a journal folder); call once at start */
  recover(): Promise<{ recovered: number; dropped: number }>;
  /** storage reachability, for /healthz */
  ping(): Promise<void>;
  stats(): UploaderStats;
  on<E extends keyof UploaderEvents>(event: E, listener: (...args: UploaderEvents[E]) => void): this;
  off<E extends keyof UploaderEvents>(event: E, listener: (...args: UploaderEvents[E]) => void): this;
}
