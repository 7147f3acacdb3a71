import { describe, expect, it } from "vitest";
import { defaultS3PublicBaseUrl, loadStorageConfig, StorageConfigError } from "./config.ts";

describe("storage config", () => {
  it("defaults to the fs driver under the repo's var/media/storage, served at the node's /media/", () => {
    const config = loadStorageConfig({}, { httpBaseUrl: "http://127.0.0.1:8000/", baseDir: "/srv/pulsecast" });
    expect(config.store).toEqual({ driver: "fs", dir: "/srv/pulsecast/var/media/storage", publicBaseUrl: "http://127.0.0.1:8000/media" });
    expect(config.uploader).toMatchObject({ concurrency: 4, spoolMaxBytes: 1024 ** 3, maxAttempts: 0, keepLocal: false, journalDir: undefined });
  });

  it("resolves a relative upload journal folder from the base folder", () => {
    expect(loadStorageConfig({ UPLOAD_JOURNAL_DIR: "var/media/upload-journal" }, { baseDir: "/srv/p" }).uploader.journalDir).toBe("/srv/p/var/media/upload-journal");
    expect(loadStorageConfig({ UPLOAD_JOURNAL_DIR: "/abs/j" }).uploader.journalDir).toBe("/abs/j");
  });

  it("reads every s3 setting, treating empty values as unset", () => {
    const config = loadStorageConfig({
      STORAGE_DRIVER: "s3",
      S3_ENDPOINT: "http://127.0.0.1:9000/",
      S3_BUCKET: "media",
      S3_ACCESS_KEY_ID: "id",
      S3_SECRET_ACCESS_KEY: "secret",
      S3_FORCE_PATH_STYLE: "true",
      S3_REGION: "",
      UPLOAD_SPOOL_MAX_BYTES: "1000",
      UPLOAD_KEEP_LOCAL: "yes",
    });
    expect(config.store).toEqual({
      driver: "s3",
      endpoint: "http://127.0.0.1:9000",
      region: "auto",
      bucket: "media",
      credentials: { accessKeyId: "id", secretAccessKey: "secret" },
      forcePathStyle: true,
      publicBaseUrl: "http://127.0.0.1:9000/media",
      requestTimeoutMs: 15_000,
      maxAttempts: 1,
    });
    expect(config.uploader.spoolMaxBytes).toBe(1000);
    expect(config.uploader.keepLocal).toBe(true);
  });

  it("S3_PUBLIC_BASE_URL wins over the derived URL", () => {
    const config = loadStorageConfig({ STORAGE_DRIVER: "s3", S3_BUCKET: "media", S3_PUBLIC_BASE_URL: "https://cdn.example.com/" });
    expect(config.store.publicBaseUrl).toBe("https://cdn.example.com");
  });

  it("derives public URLs for path style, virtual-host style and AWS", () => {
    expect(defaultS3PublicBaseUrl("http://127.0.0.1:9000", "auto", "b", true)).toBe("http://127.0.0.1:9000/b");
    expect(defaultS3PublicBaseUrl("https://acc.r2.cloudflarestorage.com", "auto", "b", false)).toBe("https://b.acc.r2.cloudflarestorage.com");
    expect(defaultS3PublicBaseUrl(undefined, "eu-west-1", "b", false)).toBe("https://b.s3.eu-west-1.amazonaws.com");
  });

  it("reports every bad setting at once, each with its env var name", () => {
    let error: unknown;
    try {
      loadStorageConfig({ STORAGE_DRIVER: "gcs", UPLOAD_CONCURRENCY: "0", S3_FORCE_PATH_STYLE: "maybe", S3_ENDPOINT: "ftp://x" });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StorageConfigError);
    const message = (error as Error).message;
    for (const name of ["STORAGE_DRIVER", "UPLOAD_CONCURRENCY", "S3_FORCE_PATH_STYLE", "S3_ENDPOINT"]) expect(message).toContain(name);
  });

  it("refuses s3 without a bucket, half a credential pair, and a max backoff below the base", () => {
    expect(() => loadStorageConfig({ STORAGE_DRIVER: "s3" })).toThrow(/S3_BUCKET is required/);
    expect(() => loadStorageConfig({ STORAGE_DRIVER: "s3", S3_BUCKET: "b", S3_ACCESS_KEY_ID: "x" })).toThrow(/both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY/);
    expect(() => loadStorageConfig({ UPLOAD_RETRY_BASE_MS: "500", UPLOAD_RETRY_MAX_MS: "100" })).toThrow(/UPLOAD_RETRY_MAX_MS/);
  });
});
