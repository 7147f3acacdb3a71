import { describe, expect, it } from "vitest";
import { StorageKeyError } from "./errors.ts";
import { assertObjectKey, checkKeyPrefix, checkObjectKey, joinKey, MAX_KEY_LENGTH } from "./keys.ts";

describe("object keys", () => {
  it.each(["live/abc/master.m3u8", "live/abc/720p/seg_00001.m4s", "vod/x-1/init.mp4", "a", "a/b=c+d,e@f~g/h.ts"])("accepts %s", (key) => {
    expect(checkObjectKey(key)).toEqual({ ok: true });
  });

  it.each([
    ["", "empty"],
    ["/etc/passwd", "starts with '/'"],
    ["live/../../etc/passwd", "'..' segment"],
    ["..", "'..' segment"],
    ["live/./x.ts", "'.' segment"],
    ["live/.abc.meta.json", "starts with '.'"],
    ["live//x.ts", "empty segment"],
    ["live/abc/", "ends with '/'"],
    ["live\\..\\x", "backslash"],
    ["live/a\u0000b", "control characters"],
    ["live/a\nb", "control characters"],
    ["live/a b.ts", "characters outside"],
    ["live/%2e%2e/x", "characters outside"],
    ["live/ü.ts", "characters outside"],
    ["a".repeat(MAX_KEY_LENGTH + 1), "longer than"],
  ])("refuses %j (%s)", (key, reason) => {
    const check = checkObjectKey(key);
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.reason).toContain(reason);
  });

  it("refuses non-strings", () => {
    expect(checkObjectKey(undefined).ok).toBe(false);
    expect(checkObjectKey(42).ok).toBe(false);
  });

  it("assertObjectKey throws a StorageKeyError naming the key and reason", () => {
    expect(() => assertObjectKey("a/../b")).toThrow(StorageKeyError);
    expect(() => assertObjectKey("a/../b")).toThrow(/"a\/..\/b".*'\.\.' segment/);
  });

  it("prefixes may be empty or end with '/', under the same rules", () => {
    expect(checkKeyPrefix("").ok).toBe(true);
    expect(checkKeyPrefix("live/abc/").ok).toBe(true);
    expect(checkKeyPrefix("live/abc/seg_").ok).toBe(true);
    expect(checkKeyPrefix("../").ok).toBe(false);
    expect(checkKeyPrefix("/live/").ok).toBe(false);
  });

  it("joinKey joins parts without doubled slashes and checks the result", () => {
    expect(joinKey("live/abc/", "/720p", "seg_1.m4s")).toBe("live/abc/720p/seg_1.m4s");
    expect(joinKey("live", "", "x.ts")).toBe("live/x.ts");
    expect(() => joinKey("live", "..", "x.ts")).toThrow(StorageKeyError);
  });
});
