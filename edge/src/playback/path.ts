// What a /play request asks for, checked before anything is looked up: `/play/<playback id | token>/<path>`.
// The path is matched against the raw request path with one strict character rule per segment (the media
// node's storage key rule): no `%` at all, so no encoded slash or dot and no double encoding can reach a key;
// no empty, `.` or `..` segment; only the media types players fetch.
import { checkStreamId } from "../../../shared/names.ts";
import { looksLikeToken, MAX_PLAYBACK_TOKEN_LENGTH } from "./tokens.ts";

const SEGMENT = /^[A-Za-z0-9_=+,@~-][A-Za-z0-9_.=+,@~-]*$/;
const MAX_PATH = 512;

export type Kind = "playlist" | "segment" | "text" | "image";

const TYPES: Record<string, { type: string; kind: Kind }> = {
  m3u8: { type: "application/vnd.apple.mpegurl", kind: "playlist" },
  m4s: { type: "video/iso.segment", kind: "segment" },
  mp4: { type: "video/mp4", kind: "segment" },
  m4a: { type: "audio/mp4", kind: "segment" },
  m4v: { type: "video/mp4", kind: "segment" },
  ts: { type: "video/mp2t", kind: "segment" },
  aac: { type: "audio/aac", kind: "segment" },
  vtt: { type: "text/vtt; charset=utf-8", kind: "text" },
  jpg: { type: "image/jpeg", kind: "image" },
  jpeg: { type: "image/jpeg", kind: "image" },
};

export type PlayTarget =
  | { ok: true; by: "token"; token: string; path: string; contentType: string; kind: Kind }
  | { ok: true; by: "id"; streamId: string; path: string; contentType: string; kind: Kind }
  | { ok: false; status: 400 | 404; code: string; message: string };

/** Parses a raw request path (`new URL(request.url).pathname`, undecoded) under `/play/`. */
export function parsePlayPath(pathname: string): PlayTarget {
  if (!pathname.startsWith("/play/")) return { ok: false, status: 404, code: "not_found", message: "no such route" };
  const rest = pathname.slice("/play/".length);
  const slash = rest.indexOf("/");
  if (slash <= 0) return { ok: false, status: 404, code: "not_found", message: "use /play/<playback id or token>/<file>" };
  const first = rest.slice(0, slash);
  const path = rest.slice(slash + 1);
  if (path.length === 0 || path.length > MAX_PATH) return { ok: false, status: 400, code: "bad_path", message: "the file path is empty or too long" };
  for (const segment of path.split("/")) {
    if (!SEGMENT.test(segment)) return { ok: false, status: 400, code: "bad_path", message: "the file path has an empty, dot-led or encoded segment, or characters outside [A-Za-z0-9_.=+,@~-]" };
  }
  const dot = path.lastIndexOf(".");
  const type = dot > path.lastIndexOf("/") ? TYPES[path.slice(dot + 1).toLowerCase()] : undefined;
  if (!type) return { ok: false, status: 404, code: "not_found", message: "only playlists, segments, captions and images are served" };
  if (looksLikeToken(first)) {
    if (first.length > MAX_PLAYBACK_TOKEN_LENGTH || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(first)) {
      return { ok: false, status: 400, code: "bad_path", message: "the token in the path is malformed" };
    }
    return { ok: true, by: "token", token: first, path, contentType: type.type, kind: type.kind };
  }
  if (!checkStreamId(first).ok) return { ok: false, status: 400, code: "bad_path", message: "the playback id is malformed" };
  return { ok: true, by: "id", streamId: first, path, contentType: type.type, kind: type.kind };
}

/** Cache-Control for what is served: segments never change; live playlists change every segment. */
export function cacheControlFor(kind: Kind, body: ArrayBuffer): string {
  if (kind === "segment") return "public, max-age=31536000, immutable";
  if (kind === "playlist") return endsList(body) ? "public, max-age=300" : "public, max-age=1";
  return "public, max-age=60";
}

const ENDLIST = new TextEncoder().encode("#EXT-X-ENDLIST");

/** A playlist that has EXT-X-ENDLIST is finished (VOD or an ended broadcast) and may be cached longer. */
function endsList(body: ArrayBuffer): boolean {
  // The tag sits at the end; look at the tail only.
  const tail = new Uint8Array(body, Math.max(0, body.byteLength - 64));
  outer: for (let i = 0; i + ENDLIST.length <= tail.length; i++) {
    for (let j = 0; j < ENDLIST.length; j++) if (tail[i + j] !== ENDLIST[j]) continue outer;
    return true;
  }
  return false;
}
