// Storage configuration of the media node: the store (fs folder or S3 bucket) and the uploader, derived from the
// storage settings declared in ../settings/storage.ts (every variable, its default and meaning is there).

import { resolve } from "node:path";
import { checkSettings, type RawEnv, SettingsError } from "../../../shared/settings/settings.ts";
import { type StorageSettings, storageSettings } from "../settings/storage.ts";

/** What a relative STORAGE_FS_DIR or UPLOAD_JOURNAL_DIR is resolved against: the repository root. */
const ROOT = resolve(import.meta.dirname, "../../..");

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
export class StorageConfigError extends SettingsError {
  constructor(problems: string[]) {
    super(problems, "storage settings");
    this.name = "StorageConfigError";
  }
}

const trimSlash = (u: string | undefined) => u?.replace(/\/+$/, "");

/**
 * The store and uploader for checked storage settings, or the cross-setting problems.
 * `httpBaseUrl` is the media node's own public HTTP origin (default http://127.0.0.1:8000), used for fs playback
 * URLs; `baseDir` is what relative folders are resolved against (default: the repository root).
 */
export function storageConfigFrom(e: StorageSettings, opts: { httpBaseUrl?: string; baseDir?: string } = {}): StorageConfig | { problems: string[] } {
  const problems: string[] = [];
  if (e.uploadRetryMaxMs < e.uploadRetryBaseMs) problems.push(`UPLOAD_RETRY_MAX_MS (${e.uploadRetryMaxMs}) is below UPLOAD_RETRY_BASE_MS (${e.uploadRetryBaseMs})`);
  let store: StoreConfig;
  if (e.driver === "fs") {
    const httpBase = (opts.httpBaseUrl ?? "http://127.0.0.1:8000").replace(/\/+$/, "");
    store = { driver: "fs", dir: resolve(opts.baseDir ?? ROOT, e.fsDir), publicBaseUrl: trimSlash(e.fsPublicBaseUrl) ?? `${httpBase}/media` };
  } else {
    if (!e.s3Bucket) problems.push("S3_BUCKET is required when STORAGE_DRIVER=s3");
    if (Boolean(e.s3AccessKeyId) !== Boolean(e.s3SecretAccessKey)) problems.push("set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither");
    const bucket = e.s3Bucket ?? "";
    const endpoint = trimSlash(e.s3Endpoint);
    store = {
      driver: "s3",
      endpoint,
      region: e.s3Region,
      bucket,
      credentials: e.s3AccessKeyId && e.s3SecretAccessKey ? { accessKeyId: e.s3AccessKeyId, secretAccessKey: e.s3SecretAccessKey } : undefined,
      forcePathStyle: e.s3ForcePathStyle,
      publicBaseUrl: trimSlash(e.s3PublicBaseUrl) ?? defaultS3PublicBaseUrl(endpoint, e.s3Region, bucket, e.s3ForcePathStyle),
      requestTimeoutMs: e.s3RequestTimeoutMs,
      maxAttempts: e.s3MaxAttempts,
    };
  }
  if (problems.length > 0) return { problems };
  return {
    store,
    uploader: {
      concurrency: e.uploadConcurrency,
      spoolMaxBytes: e.uploadSpoolMaxBytes,
      retryBaseMs: e.uploadRetryBaseMs,
      retryMaxMs: e.uploadRetryMaxMs,
      maxAttempts: e.uploadMaxAttempts,
      attemptTimeoutMs: e.uploadAttemptTimeoutMs,
      keepLocal: e.uploadKeepLocal,
      journalDir: e.uploadJournalDir ? resolve(opts.baseDir ?? ROOT, e.uploadJournalDir) : undefined,
    },
  };
}

/** Reads and checks the storage settings alone from `env` (process.env by default). Throws StorageConfigError listing every problem. */
export function loadStorageConfig(env: RawEnv = process.env, opts: { httpBaseUrl?: string; baseDir?: string } = {}): StorageConfig {
  const checked = checkSettings(storageSettings, env);
  if (checked.values === undefined) throw new StorageConfigError(checked.problems);
  const derived = storageConfigFrom(checked.values, opts);
  if ("problems" in derived) throw new StorageConfigError(derived.problems);
  return derived;
}

/** Where the bucket's objects can be fetched when no CDN / public domain is configured. */
export function defaultS3PublicBaseUrl(endpoint: string | undefined, region: string, bucket: string, forcePathStyle: boolean): string {
  if (!endpoint) return region === "auto" ? `https://${bucket}.s3.amazonaws.com` : `https://${bucket}.s3.${region}.amazonaws.com`;
  if (forcePathStyle) return `${endpoint}/${bucket}`;
  const u = new URL(endpoint);
  return `${u.protocol}//${bucket}.${u.host}`;
}
