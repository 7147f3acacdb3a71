// Settings of uploads and the videos API, declared with the shared builders (one declaration per setting:
// variable, default, bounds, meaning). Read from the Worker's vars; a bad value is refused with every problem
// listed, before anything is stored.

import { int, readSettings, type SettingsOf } from "../../../shared/settings/settings.ts";

const MiB = 1024 * 1024;

export const videoSettings = {
  maxUploadBytes: int("VIDEO_MAX_UPLOAD_BYTES", 4 * 1024 * MiB, "largest upload, bytes; a larger Upload-Length is refused with 413 (advertised as Tus-Max-Size)", { min: 1 }),
  maxConcurrentUploads: int("VIDEO_MAX_CONCURRENT_UPLOADS", 3, "uploads one user may have in progress at once; one more is refused with 429", { min: 1, max: 1000 }),
  uploadExpiryS: int("VIDEO_UPLOAD_EXPIRY_S", 24 * 3600, "an unfinished upload expires this many seconds after it was created: its stored parts are removed and it answers 410", { min: 60, max: 7 * 86400 }),
  partBytes: int("VIDEO_UPLOAD_PART_BYTES", 10 * MiB, "R2 multipart part size, bytes (R2 needs equal parts of at least 5 MiB); clients may send any chunk size up to VIDEO_MAX_CHUNK_BYTES", { min: 5 * MiB, max: 100 * MiB }),
  maxChunkBytes: int("VIDEO_MAX_CHUNK_BYTES", 50 * MiB, "largest PATCH body accepted; clients should use chunks of this size (Workers refuse request bodies over 100 MiB)", { min: 1, max: 100 * MiB }),
  pageLimit: int("VIDEO_PAGE_LIMIT", 20, "videos per page of GET /videos when the client asks for no limit (at most 100)", { min: 1, max: 100 }),
} as const;

export type VideoSettings = SettingsOf<typeof videoSettings>;

/** Reads the settings from the Worker's env; throws a SettingsError naming every bad value. */
export function readVideoSettings(env: object): VideoSettings {
  return readSettings(videoSettings, env as Record<string, unknown>, "video settings");
}
