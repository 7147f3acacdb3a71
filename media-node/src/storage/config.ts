// Storage settings of the media node. Every setting: env var, default, meaning. The node's config.ts imports
// loadStorageConfig() and passes its own HTTP base URL (the fs driver's objects are served there at /media/).
//
// Driver
//   STORAGE_DRIVER              fs | s3                 default: fs
//       Where segments and playlists go. `fs` is a local folder served by the node's HTTP (local runs);
//       `s3` is R2 or any S3-protocol endpoint.
//
// fs driver
//   STORAGE_FS_DIR              path                    default: ./var/media/storage
//       Root folder of stored objects (key "live/abc/master.m3u8" → <dir>/live/abc/master.m3u8). A relative
//       path is taken from the repository root (like MEDIA_WORK_DIR), so it does not depend on the start folder.
//   STORAGE_FS_PUBLIC_BASE_URL  URL                     default: <node HTTP base URL>/media
//       Base of playback URLs handed to viewers; set it when the node sits behind a proxy or CDN.
//
// s3 driver (R2: S3_ENDPOINT=https://<account>.r2.cloudflarestorage.com, S3_REGION=auto)
//   S3_ENDPOINT                 URL                     default: (AWS S3 for the region)
//   S3_REGION                   string                  default: auto
//   S3_BUCKET                   string                  required with STORAGE_DRIVER=s3
//   S3_ACCESS_KEY_ID            string                  default: (the SDK's credential chain)
//   S3_SECRET_ACCESS_KEY        string                  default: (the SDK's credential chain) — set both or neither
//   S3_FORCE_PATH_STYLE         true | false            default: false
//       http://endpoint/bucket/key instead of http://bucket.endpoint/key; needed for local S3 servers.
//   S3_PUBLIC_BASE_URL          URL                     default: <endpoint>/<bucket> (path style) or https://<bucket>.<endpoint host>
//       Base of playback URLs (the CDN / R2 public domain in front of the bucket).
//   S3_REQUEST_TIMEOUT_MS       ms                      default: 15000
//       A request that gets no answer in this time fails (and the uploader retries); a dead storage never hangs us.
//   S3_MAX_ATTEMPTS             count                   default: 1
//       The SDK's own retries per call. 1 because the uploader already retries with backoff and its own metrics.
//
// Uploader (both drivers)
//   UPLOAD_CONCURRENCY          count                   default: 4
//       Objects stored in parallel (different keys; one key is always stored in order).
//   UPLOAD_SPOOL_MAX_BYTES      bytes                   default: 1073741824 (1 GiB)
//       Bytes allowed to wait for storage. When full, new uploads are refused with SpoolFullError (their files
//       stay on disk); nothing already waiting is dropped. ~1 GiB holds ~15 min of a 3-rung 720p ladder.
//   UPLOAD_RETRY_BASE_MS        ms                      default: 200
//   UPLOAD_RETRY_MAX_MS         ms                      default: 10000
//       Backoff between attempts: base·2^(n-1) capped at max, with jitter (half fixed, half random) so many
//       nodes coming back from an outage do not hit storage in lockstep. The cap bounds recovery time after
//       storage returns.
//   UPLOAD_MAX_ATTEMPTS         count, 0 = forever      default: 0
//       Give up (reject) after this many failed attempts. Live media waits forever by default: losing a
//       segment is worse than waiting for storage.
//   UPLOAD_ATTEMPT_TIMEOUT_MS   ms                      default: 30000
//       One attempt (open file + send + answer) is aborted after this long and retried.
//   UPLOAD_KEEP_LOCAL           true | false            default: false
//       Keep local files after they are stored (debugging); by default they are deleted once stored.
//   UPLOAD_JOURNAL_DIR          path                    default: (none: no journal)
//       Folder where each accepted upload is written down until stored, so that after a crash or restart
//       during a storage outage the node re-queues the waiting files (ReliableUploader.recover()) instead of
//       orphaning them. One folder per node process; relative paths are taken from the repository root.

import { resolve } from "node:path";
import { z } from "zod";

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"], { error: "expected true or false" })
  .transform((v) => v === "true" || v === "1" || v === "yes");
const int = (min: number) => z.coerce.number({ error: "expected a number" }).int("expected an integer").min(min);
const url = z.url({ error: "expected an absolute http(s) URL", protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, ""));

/** What the environment may hold. Empty strings count as unset, so `S3_ENDPOINT=` in a .env does not break parsing. */
const ROOT = resolve(import.meta.dirname, "../../..");

const StorageEnv = z.object({
  STORAGE_DRIVER: z.enum(["fs", "s3"]).default("fs"),
  STORAGE_FS_DIR: z.string().default("./var/media/storage"),
  STORAGE_FS_PUBLIC_BASE_URL: url.optional(),
  S3_ENDPOINT: url.optional(),
  S3_REGION: z.string().default("auto"),
  S3_BUCKET: z.string().optional(),
  S3_ACCESS_KEY_ID: z.string().optional(),
  S3_SECRET_ACCESS_KEY: z.string().optional(),
  S3_FORCE_PATH_STYLE: bool.default(false),
  S3_PUBLIC_BASE_URL: url.optional(),
  S3_REQUEST_TIMEOUT_MS: int(1).default(15_000),
  S3_MAX_ATTEMPTS: int(1).default(1),
  UPLOAD_CONCURRENCY: int(1).default(4),
  UPLOAD_SPOOL_MAX_BYTES: int(1).default(1024 * 1024 * 1024),
  UPLOAD_RETRY_BASE_MS: int(1).default(200),
  UPLOAD_RETRY_MAX_MS: int(1).default(10_000),
  UPLOAD_MAX_ATTEMPTS: int(0).default(0),
  UPLOAD_ATTEMPT_TIMEOUT_MS: int(1).default(30_000),
  UPLOAD_KEEP_LOCAL: bool.default(false),
  UPLOAD_JOURNAL_DIR: z.string().optional(),
});

export interface FsStoreConfig {
  driver: "fs";
  /** absolute root folder */
  dir: string;
  publicBaseUrl: string;
}

export interface S3StoreConfig {
  driver: "s3";
  endpoint: string | undefined;
  region: string;
  bucket: string;
  credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
  forcePathStyle: boolean;
  publicBaseUrl: string;
  requestTimeoutMs: number;
  maxAttempts: number;
}

export type StoreConfig = FsStoreConfig | S3StoreConfig;

export interface UploaderConfig {
  concurrency: number;
  spoolMaxBytes: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** 0 = retry forever */
  maxAttempts: number;
  attemptTimeoutMs: number;
  keepLocal: boolean;
  /** absolute folder of the upload journal, or undefined for none */
  journalDir: string | undefined;
}

export interface StorageConfig {
  store: StoreConfig;
  uploader: UploaderConfig;
}

export const DEFAULT_UPLOADER_CONFIG: UploaderConfig = {
  concurrency: 4,
  spoolMaxBytes: 1024 * 1024 * 1024,
  retryBaseMs: 200,
  retryMaxMs: 10_000,
  maxAttempts: 0,
  attemptTimeoutMs: 30_000,
  keepLocal: false,
  journalDir: undefined,
};

/** Bad settings are reported all at once, each with its env var name, at startup. */
export class StorageConfigError extends Error {
  constructor(problems: string[]) {
    super(`invalid storage settings:\n  ${problems.join("\n  ")}`);
    this.name = "StorageConfigError";
  }
}

/**
 * Reads the storage settings from `env` (process.env by default).
 * `httpBaseUrl` is the media node's own HTTP origin (default http://127.0.0.1:8000, MEDIA_HTTP_PORT's default),
 * used for fs playback URLs; `baseDir` is what a relative STORAGE_FS_DIR is resolved against (default: repo root).
 */
export function loadStorageConfig(env: Record<string, string | undefined> = process.env, opts: { httpBaseUrl?: string; baseDir?: string } = {}): StorageConfig {
  const raw: Record<string, string> = {};
  for (const key of Object.keys(StorageEnv.shape)) {
    const value = env[key]?.trim();
    if (value) raw[key] = value;
  }
  const parsed = StorageEnv.safeParse(raw);
  if (!parsed.success) {
    throw new StorageConfigError(parsed.error.issues.map((i) => `${i.path.join(".")}=${JSON.stringify(raw[String(i.path[0])] ?? "")}: ${i.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];
  if (e.UPLOAD_RETRY_MAX_MS < e.UPLOAD_RETRY_BASE_MS) problems.push(`UPLOAD_RETRY_MAX_MS (${e.UPLOAD_RETRY_MAX_MS}) is below UPLOAD_RETRY_BASE_MS (${e.UPLOAD_RETRY_BASE_MS})`);

  let store: StoreConfig;
  if (e.STORAGE_DRIVER === "fs") {
    const httpBase = (opts.httpBaseUrl ?? "http://127.0.0.1:8000").replace(/\/+$/, "");
    store = { driver: "fs", dir: resolve(opts.baseDir ?? ROOT, e.STORAGE_FS_DIR), publicBaseUrl: e.STORAGE_FS_PUBLIC_BASE_URL ?? `${httpBase}/media` };
  } else {
    if (!e.S3_BUCKET) problems.push("S3_BUCKET is required when STORAGE_DRIVER=s3");
    if (Boolean(e.S3_ACCESS_KEY_ID) !== Boolean(e.S3_SECRET_ACCESS_KEY)) problems.push("set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither");
    const bucket = e.S3_BUCKET ?? "";
    store = {
      driver: "s3",
      endpoint: e.S3_ENDPOINT,
      region: e.S3_REGION,
      bucket,
      credentials: e.S3_ACCESS_KEY_ID && e.S3_SECRET_ACCESS_KEY ? { accessKeyId: e.S3_ACCESS_KEY_ID, secretAccessKey: e.S3_SECRET_ACCESS_KEY } : undefined,
      forcePathStyle: e.S3_FORCE_PATH_STYLE,
      publicBaseUrl: e.S3_PUBLIC_BASE_URL ?? defaultS3PublicBaseUrl(e.S3_ENDPOINT, e.S3_REGION, bucket, e.S3_FORCE_PATH_STYLE),
      requestTimeoutMs: e.S3_REQUEST_TIMEOUT_MS,
      maxAttempts: e.S3_MAX_ATTEMPTS,
    };
  }
  if (problems.length > 0) throw new StorageConfigError(problems);
  return {
    store,
    uploader: {
      concurrency: e.UPLOAD_CONCURRENCY,
      spoolMaxBytes: e.UPLOAD_SPOOL_MAX_BYTES,
      retryBaseMs: e.UPLOAD_RETRY_BASE_MS,
      retryMaxMs: e.UPLOAD_RETRY_MAX_MS,
      maxAttempts: e.UPLOAD_MAX_ATTEMPTS,
      attemptTimeoutMs: e.UPLOAD_ATTEMPT_TIMEOUT_MS,
      keepLocal: e.UPLOAD_KEEP_LOCAL,
      journalDir: e.UPLOAD_JOURNAL_DIR ? resolve(opts.baseDir ?? ROOT, e.UPLOAD_JOURNAL_DIR) : undefined,
    },
  };
}

/** Where the bucket's objects can be fetched when no CDN / public domain is configured. */
export function defaultS3PublicBaseUrl(endpoint: string | undefined, region: string, bucket: string, forcePathStyle: boolean): string {
  if (!endpoint) return region === "auto" ? `https://${bucket}.s3.amazonaws.com` : `https://${bucket}.s3.${region}.amazonaws.com`;
  if (forcePathStyle) return `${endpoint}/${bucket}`;
  const u = new URL(endpoint);
  return `${u.protocol}//${bucket}.${u.host}`;
}
