// Storage settings of the media node: where segments and playlists go (a local folder served by the node, or
// any S3-protocol bucket such as R2), and how the uploader retries while storage is away.

import { bool, int, oneOf, secret, text, type SettingsOf, url } from "../../../shared/settings/settings.ts";

const httpUrl = (env: string, doc: string, defaultText: string) => url(env, undefined, doc, { protocols: ["http:", "https:"], optional: true, defaultText });

export const storageSettings = {
  driver: oneOf("STORAGE_DRIVER", "fs", ["fs", "s3"] as const, "where segments and playlists go: `fs` is a local folder served by the node's HTTP, `s3` is R2 or any S3-protocol endpoint"),
  fsDir: text("STORAGE_FS_DIR", "./var/media/storage", "fs driver: root folder of stored objects; a relative path is taken from the repository root"),
  fsPublicBaseUrl: httpUrl("STORAGE_FS_PUBLIC_BASE_URL", "fs driver: base of playback URLs handed to viewers; set it behind a proxy or CDN", "`<node HTTP URL>/media`"),
  s3Endpoint: httpUrl("S3_ENDPOINT", "s3 driver: endpoint (R2: https://<account>.r2.cloudflarestorage.com)", "AWS S3 for the region"),
  s3Region: text("S3_REGION", "auto", "s3 driver: region (R2: auto)"),
  s3Bucket: text("S3_BUCKET", undefined, "s3 driver: bucket; required with STORAGE_DRIVER=s3", { optional: true }),
  s3AccessKeyId: text("S3_ACCESS_KEY_ID", undefined, "s3 driver: access key id (unset: the SDK's credential chain); set with S3_SECRET_ACCESS_KEY", { optional: true }),
  s3SecretAccessKey: secret("S3_SECRET_ACCESS_KEY", "s3 driver: secret access key, with S3_ACCESS_KEY_ID", { optional: true, minLength: 1 }),
  s3ForcePathStyle: bool("S3_FORCE_PATH_STYLE", false, "s3 driver: http://endpoint/bucket/key instead of http://bucket.endpoint/key (local S3 servers)"),
  s3PublicBaseUrl: httpUrl("S3_PUBLIC_BASE_URL", "s3 driver: base of playback URLs (the CDN or R2 public domain in front of the bucket)", "`<endpoint>/<bucket>` or `https://<bucket>.<endpoint host>`"),
  s3RequestTimeoutMs: int("S3_REQUEST_TIMEOUT_MS", 15_000, "s3 driver: a request without an answer in this many ms fails (and the uploader retries)", { min: 1 }),
  s3MaxAttempts: int("S3_MAX_ATTEMPTS", 1, "s3 driver: the SDK's own attempts per call (the uploader already retries with backoff)", { min: 1 }),
  uploadConcurrency: int("UPLOAD_CONCURRENCY", 4, "objects stored in parallel (one key is always stored in order)", { min: 1 }),
  uploadSpoolMaxBytes: int("UPLOAD_SPOOL_MAX_BYTES", 1024 * 1024 * 1024, "bytes allowed to wait for storage; beyond it new uploads are refused (their files stay on disk), nothing waiting is dropped", { min: 1 }),
  uploadRetryBaseMs: int("UPLOAD_RETRY_BASE_MS", 200, "first retry delay, ms; doubles per attempt with jitter", { min: 1 }),
  uploadRetryMaxMs: int("UPLOAD_RETRY_MAX_MS", 10_000, "largest retry delay, ms (bounds recovery time after storage returns)", { min: 1 }),
  uploadMaxAttempts: int("UPLOAD_MAX_ATTEMPTS", 0, "give up after this many failed attempts; 0 = retry forever (live media waits for storage)", { min: 0 }),
  uploadAttemptTimeoutMs: int("UPLOAD_ATTEMPT_TIMEOUT_MS", 30_000, "one attempt (open file, send, answer) is aborted after this many ms and retried", { min: 1 }),
  uploadKeepLocal: bool("UPLOAD_KEEP_LOCAL", false, "keep local files after they are stored (debugging)"),
  uploadJournalDir: text("UPLOAD_JOURNAL_DIR", undefined, "folder where accepted uploads are written down until stored, so a restart during a storage outage re-queues them; relative to the repository root", { optional: true }),
} as const;

export type StorageSettings = SettingsOf<typeof storageSettings>;
