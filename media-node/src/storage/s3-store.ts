// The `s3` driver: R2 or any S3-protocol endpoint through @aws-sdk/client-s3.
//
// Two settings are not optional here (both were seen failing without them):
// - requestChecksumCalculation / responseChecksumValidation = "WHEN_REQUIRED": with the SDK's default
//   ("WHEN_SUPPORTED") streamed PutObject bodies are sent aws-chunked with a trailing checksum, and servers
//   that do not speak that (s3rver, some S3 clones) store the chunk framing INSIDE the object — a silently
//   corrupt segment. It also makes unknown-length streams fail.
// - forcePathStyle for local servers (no wildcard DNS for bucket subdomains on 127.0.0.1).
// The SDK's own retries default to 1 attempt (S3_MAX_ATTEMPTS): the ReliableUploader retries with backoff and
// counts failures itself; two retry loops stacked would hide outages and stretch recovery.

import { createReadStream } from "node:fs";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { prepareBody } from "./body.ts";
import type { S3StoreConfig } from "./config.ts";
import { contentTypeFor } from "./content-types.ts";
import { StorageError, StorageKeyError } from "./errors.ts";
import { assertObjectKey, checkKeyPrefix } from "./keys.ts";
import type { ObjectInfo, ObjectStore, PutBody, PutOptions, StoredObject } from "./types.ts";

export type S3ObjectStoreOptions = Omit<S3StoreConfig, "driver"> & {
  /** keys per ListObjectsV2 page (S3's maximum and default is 1000; smaller only to exercise paging in tests) */
  listPageSize?: number;
  /** where the SDK's own log lines go (default: nowhere; every failure reaches the caller as a StorageError) */
  logger?: SdkLogger;
};

/** The SDK's logger shape. Without one it prints "An error was encountered in a non-retryable streaming request." to stderr on every failed file upload, a duplicate of what the uploader already reports. */
export interface SdkLogger {
  trace?: (...content: unknown[]) => void;
  debug: (...content: unknown[]) => void;
  info: (...content: unknown[]) => void;
  warn: (...content: unknown[]) => void;
  error: (...content: unknown[]) => void;
}

const quiet: SdkLogger = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

export class S3ObjectStore implements ObjectStore {
  readonly kind = "s3" as const;
  readonly bucket: string;
  readonly client: S3Client;
  readonly #publicBaseUrl: string;
  readonly #listPageSize: number | undefined;

  constructor(options: S3ObjectStoreOptions) {
    this.bucket = options.bucket;
    this.#listPageSize = options.listPageSize;
    this.#publicBaseUrl = options.publicBaseUrl.replace(/\/+$/, "");
    this.client = new S3Client({
      region: options.region,
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle,
      credentials: options.credentials,
      maxAttempts: options.maxAttempts,
      logger: options.logger ?? quiet,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      requestHandler: { connectionTimeout: Math.min(options.requestTimeoutMs, 5_000), requestTimeout: options.requestTimeoutMs },
    });
  }

  async put(key: string, body: PutBody, options: PutOptions = {}): Promise<void> {
    assertObjectKey(key);
    const prepared = await prepareBody(body);
    let payload: Uint8Array | ReturnType<typeof createReadStream>;
    let length: number;
    if (prepared.kind === "file") {
      // Streamed from disk with a known length: a segment is never held in memory whole, and each retry re-opens it.
      payload = createReadStream(prepared.path);
      length = prepared.size;
    } else if (prepared.kind === "bytes") {
      payload = prepared.bytes;
      length = prepared.size;
    } else {
      // PutObject needs a length up front; unknown-length streams are small here (generated text), so buffer them.
      const chunks: Buffer[] = [];
      for await (const chunk of prepared.stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
      payload = new Uint8Array(Buffer.concat(chunks));
      length = payload.byteLength;
    }
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: payload,
          ContentLength: length,
          ContentType: options.contentType ?? contentTypeFor(key),
          CacheControl: options.cacheControl,
        }),
        { abortSignal: options.signal },
      );
    } catch (error) {
      throw wrap("put", key, error);
    } finally {
      if (typeof (payload as { destroy?: unknown }).destroy === "function") (payload as ReturnType<typeof createReadStream>).destroy();
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    assertObjectKey(key);
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return {
        key,
        size: out.ContentLength ?? 0,
        contentType: out.ContentType ?? contentTypeFor(key),
        cacheControl: out.CacheControl,
        etag: out.ETag,
        lastModified: out.LastModified,
      };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw wrap("head", key, error);
    }
  }

  async get(key: string): Promise<StoredObject | null> {
    assertObjectKey(key);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const body = out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
      return {
        key,
        size: body.byteLength,
        contentType: out.ContentType ?? contentTypeFor(key),
        cacheControl: out.CacheControl,
        etag: out.ETag,
        lastModified: out.LastModified,
        body,
      };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw wrap("get", key, error);
    }
  }

  async delete(key: string): Promise<void> {
    assertObjectKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      if (!isNotFound(error)) throw wrap("delete", key, error);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const check = checkKeyPrefix(prefix);
    if (!check.ok) throw new StorageKeyError(prefix, check.reason);
    const keys: string[] = [];
    let token: string | undefined;
    try {
      do {
        const out = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix || undefined, ContinuationToken: token, MaxKeys: this.#listPageSize }));
        for (const item of out.Contents ?? []) if (item.Key) keys.push(item.Key);
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
    } catch (error) {
      throw wrap("list", prefix, error);
    }
    return keys.sort();
  }

  async ping(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      throw wrap("ping bucket", this.bucket, error);
    }
  }

  publicUrl(key: string): string {
    return `${this.#publicBaseUrl}/${assertObjectKey(key)}`;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

function isNotFound(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const status = (error as S3ServiceException).$metadata?.httpStatusCode;
  return error.name === "NotFound" || error.name === "NoSuchKey" || status === 404;
}

/** One error type for callers; the S3 error name and HTTP status (or the socket error code) stay visible in code/message. */
function wrap(op: string, key: string, error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  const e = error as Error & { $metadata?: { httpStatusCode?: number }; code?: string };
  const status = e.$metadata?.httpStatusCode;
  const code = e.name && e.name !== "Error" ? e.name : (e.code ?? "S3_ERROR");
  return new StorageError(`s3 ${op} ${key} failed: ${code}${status ? ` (HTTP ${status})` : ""}: ${e.message}`, code, { cause: error, status });
}
