// Object keys are built from stream ids and rung names, and on the fs driver they become file paths, and on
// the HTTP handler they come straight from a URL. One strict rule, checked at every entry point, means a key
// can never climb out of the storage root or address something that is not an object.

import type { NameCheck } from "../../../shared/names.ts";
import { StorageKeyError } from "./errors.ts";

/** S3's own limit is 1024 bytes of UTF-8; our keys are ASCII-only so characters == bytes. */
export const MAX_KEY_LENGTH = 1024;

/**
 * One path segment: ASCII letters, digits and `_ - . = + , @ ~`, not starting with a dot. No leading dot keeps
 * `.`/`..` out and also hides the fs driver's own files (`.name.meta.json`, `.name.tmp-*`) from any key.
 */
const SEGMENT_PATTERN = /^[A-Za-z0-9_=+,@~-][A-Za-z0-9_.=+,@~-]*$/;

export function checkObjectKey(key: unknown): NameCheck {
  if (typeof key !== "string" || key.length === 0) return { ok: false, reason: "key is empty" };
  if (key.length > MAX_KEY_LENGTH) return { ok: false, reason: `key is longer than ${MAX_KEY_LENGTH} characters` };
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) return { ok: false, reason: "key contains control characters" };
  if (key.startsWith("/")) return { ok: false, reason: "key starts with '/' (keys are relative)" };
  if (key.includes("\\")) return { ok: false, reason: "key contains a backslash" };
  if (key.endsWith("/")) return { ok: false, reason: "key ends with '/' (that names a folder, not an object)" };
  for (const segment of key.split("/")) {
    if (segment === "") return { ok: false, reason: "key contains an empty segment ('//')" };
    if (segment === "." || segment === "..") return { ok: false, reason: `key contains a '${segment}' segment` };
    if (segment.startsWith(".")) return { ok: false, reason: `key segment '${segment}' starts with '.'` };
    if (!SEGMENT_PATTERN.test(segment)) return { ok: false, reason: `key segment '${segment}' has characters outside ${SEGMENT_PATTERN.source}` };
  }
  return { ok: true };
}

/**
 * A list prefix: empty (everything), or a key-like string that may end with '/'. Same character rules, so a
 * prefix cannot point outside the root either.
 */
export function checkKeyPrefix(prefix: unknown): NameCheck {
  if (prefix === "") return { ok: true };
  if (typeof prefix !== "string") return { ok: false, reason: "prefix is not a string" };
  const trimmed = prefix.endsWith("/") ? prefix.slice(0, -1) : prefix;
  const check = checkObjectKey(trimmed);
  return check.ok ? check : { ok: false, reason: check.reason.replace(/^key/, "prefix") };
}

/** Throws StorageKeyError unless `key` passes checkObjectKey; returns it typed as a string. */
export function assertObjectKey(key: unknown): string {
  const check = checkObjectKey(key);
  if (!check.ok) throw new StorageKeyError(key, check.reason);
  return key as string;
}

/** Joins parts into a key ("live/abc", "720p", "seg_1.m4s" → "live/abc/720p/seg_1.m4s"); throws if the result is not a valid key. */
export function joinKey(...parts: string[]): string {
  return assertObjectKey(
    parts
      .map((p) => p.replace(/^\/+|\/+$/g, ""))
      .filter((p) => p !== "")
      .join("/"),
  );
}
