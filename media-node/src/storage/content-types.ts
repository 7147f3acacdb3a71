// Players are picky about MIME types (Safari refuses an HLS playlist served as text/plain, MSE players check
// segment types), so every object gets an explicit one. This table is the single source for both drivers and
// the HTTP handler.

const BY_EXTENSION: Record<string, string> = {
  m3u8: "application/vnd.apple.mpegurl",
  m4s: "video/iso.segment",
  mp4: "video/mp4",
  m4a: "audio/mp4",
  m4v: "video/mp4",
  ts: "video/mp2t",
  aac: "audio/aac",
  vtt: "text/vtt; charset=utf-8",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  png: "image/png",
  webp: "image/webp",
  json: "application/json",
  txt: "text/plain; charset=utf-8",
};

export const DEFAULT_CONTENT_TYPE = "application/octet-stream";

/** MIME type for a key or file name by its extension (case-insensitive); octet-stream when unknown. */
export function contentTypeFor(keyOrName: string): string {
  const name = keyOrName.slice(keyOrName.lastIndexOf("/") + 1);
  const dot = name.lastIndexOf(".");
  if (dot <= 0) return DEFAULT_CONTENT_TYPE;
  return BY_EXTENSION[name.slice(dot + 1).toLowerCase()] ?? DEFAULT_CONTENT_TYPE;
}

/** The Cache-Control values the issue asks for, named so the pipeline does not re-invent them. */
export const CACHE_CONTROL = {
  /** segments, init segments, VOD playlists: content under a key never changes */
  immutable: "public, max-age=31536000, immutable",
  /** live playlists: a player re-fetches about every target duration; a CDN may hold them ~1 s */
  livePlaylist: "public, max-age=1",
  /** things that must always be revalidated */
  noCache: "no-cache",
} as const;
