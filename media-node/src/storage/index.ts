// Storage for the media node: one ObjectStore interface, `fs` and `s3` drivers, the static /media/ handler
// for fs, and the ReliableUploader the live pipeline hands finished files to.

export { CACHE_CONTROL, contentTypeFor, DEFAULT_CONTENT_TYPE } from "./content-types.ts";
export { loadStorageConfig, StorageConfigError, DEFAULT_UPLOADER_CONFIG } from "./config.ts";
export type { StorageConfig, StoreConfig, FsStoreConfig, S3StoreConfig, UploaderConfig } from "./config.ts";
export { createObjectStore } from "./create-store.ts";
export { isRetryable, isStorageWide, LocalFileError, SpoolFullError, StorageError, StorageKeyError, UploaderClosedError } from "./errors.ts";
export { FsObjectStore } from "./fs-store.ts";
export { createMediaHandler, keyFromRequestPath, parseRange } from "./http-handler.ts";
export type { MediaHandler, MediaHandlerOptions } from "./http-handler.ts";
export { assertObjectKey, checkKeyPrefix, checkObjectKey, joinKey } from "./keys.ts";
export { S3ObjectStore } from "./s3-store.ts";
export { ReliableUploader } from "./uploader.ts";
export type * from "./types.ts";
