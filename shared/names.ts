// Names that come from clients and end up in URLs, object keys and file paths.
// One strict rule for each kind, checked on both sides, so a name can never escape a path.

/** Stream keys become folder names on media nodes and key prefixes in R2/S3. */
export const STREAM_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** Room ids name Durable Objects and appear in URLs; a little looser (`:` and `.` allowed), never `..`. */
export const ROOM_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/** User ids come from JWT `sub` claims and name inbox objects. */
export const USER_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:@|-]{0,127}$/;

export type NameCheck = { ok: true } | { ok: false; reason: string };

function check(kind: string, value: unknown, pattern: RegExp, max: number): NameCheck {
  if (typeof value !== "string" || value.length === 0) return { ok: false, reason: `${kind} is empty` };
  if (value.length > max) return { ok: false, reason: `${kind} is longer than ${max} characters` };
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) return { ok: false, reason: `${kind} contains control characters` };
  if (value.includes("..")) return { ok: false, reason: `${kind} contains '..'` };
  if (value.includes("/") || value.includes("\\")) return { ok: false, reason: `${kind} contains a path separator` };
  if (!pattern.test(value)) return { ok: false, reason: `${kind} has characters outside ${pattern.source}` };
  return { ok: true };
}

export const checkStreamId = (v: unknown) => check("stream id", v, STREAM_ID_PATTERN, 64);
export const checkRoomId = (v: unknown) => check("room id", v, ROOM_ID_PATTERN, 128);
export const checkUserId = (v: unknown) => check("user id", v, USER_ID_PATTERN, 128);
