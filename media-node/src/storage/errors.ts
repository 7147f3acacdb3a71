// Errors with a `code`, so callers (the live pipeline, the HTTP handler, logs) can tell what happened
// without matching on message text.

/** Base class: storage could not do what was asked (network, permissions, server error...). Usually retryable. */
export class StorageError extends Error {
  readonly code: string;
  /** HTTP status when storage answered (s3), undefined when it did not (socket errors, timeouts, fs) */
  readonly status: number | undefined;
  constructor(message: string, code = "STORAGE_ERROR", options?: { cause?: unknown; status?: number }) {
    super(message, options);
    this.name = "StorageError";
    this.code = code;
    this.status = options?.status;
  }
}

/** The key itself is unacceptable. Never retryable: the same key fails the same way forever. */
export class StorageKeyError extends StorageError {
  constructor(key: unknown, reason: string) {
    super(`bad storage key ${JSON.stringify(typeof key === "string" ? key.slice(0, 200) : key)}: ${reason}`, "BAD_KEY");
    this.name = "StorageKeyError";
  }
}

/** The uploader's local spool is at its byte limit; the new file was NOT taken (it is still on disk) and nothing queued was dropped. */
export class SpoolFullError extends StorageError {
  constructor(key: string, bytes: number, pendingBytes: number, maxBytes: number) {
    super(
      `upload spool full: ${key} (${bytes} B) refused, ${pendingBytes} B of ${maxBytes} B already waiting for storage (UPLOAD_SPOOL_MAX_BYTES)`,
      "SPOOL_FULL",
    );
    this.name = "SpoolFullError";
  }
}

/** The local file to upload is gone or unreadable: retrying cannot help. */
export class LocalFileError extends StorageError {
  constructor(path: string, cause: unknown) {
    super(`cannot read local file ${path} for upload: ${cause instanceof Error ? cause.message : String(cause)}`, "LOCAL_FILE", { cause });
    this.name = "LocalFileError";
  }
}

/** The uploader was closed before this upload was stored; the local file is kept. */
export class UploaderClosedError extends StorageError {
  constructor(key: string, localPath: string | undefined) {
    super(`uploader closed before ${key} was stored${localPath ? `; local file kept at ${localPath}` : ""}`, "UPLOADER_CLOSED");
    this.name = "UploaderClosedError";
  }
}

/** Retryable means: the same call might succeed later. Bad keys and missing local files never will. */
export function isRetryable(error: unknown): boolean {
  return !(error instanceof StorageKeyError || error instanceof LocalFileError || error instanceof UploaderClosedError || error instanceof SpoolFullError);
}

/**
 * Does this failure say "storage is down" (every upload would fail now) rather than "this object failed"?
 * No answer at all, a timeout, 5xx, 408 and 429 are storage-wide; any other 4xx is about the request.
 * The uploader slows everything down only for storage-wide failures, so one bad object cannot throttle the rest.
 */
export function isStorageWide(error: unknown): boolean {
  const status = error instanceof StorageError ? error.status : undefined;
  if (status === undefined) return true;
  return status >= 500 || status === 408 || status === 429;
}
