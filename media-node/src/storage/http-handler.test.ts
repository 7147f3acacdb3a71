// Pure parts of the /media/ handler: which key a request path names, and byte ranges.
// The handler itself is exercised over real node:http in fs-store.test.ts.
import { describe, expect, it } from "vitest";
import { keyFromRequestPath, parseRange } from "./http-handler.ts";

describe("keyFromRequestPath", () => {
  it("maps /media/<key> to the key, decoding percent-escapes", () => {
    expect(keyFromRequestPath("/media/live/abc/master.m3u8", "/media/")).toEqual({ ok: true, key: "live/abc/master.m3u8" });
    expect(keyFromRequestPath("/media/live/abc/seg%5F1.m4s", "/media/")).toEqual({ ok: true, key: "live/abc/seg_1.m4s" });
  });

  it.each([
    "/media/../etc/passwd",
    "/media/live/../../etc/passwd",
    "/media/%2e%2e/etc/passwd",
    "/media/%2E%2E/%2e%2e/etc/passwd",
    "/media/live/..%2f..%2fetc%2fpasswd",
    "/media/live%2f..%2f..%2fsecret",
    "/media/..%5c..%5cwin.ini",
    "/media//etc/passwd",
    "/media/live/%00x.ts",
    "/media/live/.x.ts.meta.json",
    "/media/live/%E0%A4%A",
    "/media/",
  ])("refuses %s", (path) => {
    expect(keyFromRequestPath(path, "/media/").ok).toBe(false);
  });

  it("says when a path is not under the prefix at all", () => {
    expect(keyFromRequestPath("/healthz", "/media/")).toEqual({ ok: false, reason: "path is not under /media/" });
  });
});

describe("parseRange", () => {
  it("parses the single-range forms players send", () => {
    expect(parseRange("bytes=0-1", 100)).toEqual({ start: 0, end: 1 });
    expect(parseRange("bytes=10-", 100)).toEqual({ start: 10, end: 99 });
    expect(parseRange("bytes=-10", 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange("bytes=90-500", 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange("bytes=-500", 100)).toEqual({ start: 0, end: 99 });
  });

  it("serves the whole object for no header or forms it does not do", () => {
    expect(parseRange(undefined, 100)).toBeUndefined();
    expect(parseRange("bytes=0-1,5-6", 100)).toBeUndefined();
    expect(parseRange("items=0-1", 100)).toBeUndefined();
    expect(parseRange("bytes=-", 100)).toBeUndefined();
  });

  it("reports unsatisfiable ranges", () => {
    expect(parseRange("bytes=100-", 100)).toBe("unsatisfiable");
    expect(parseRange("bytes=5-2", 100)).toBe("unsatisfiable");
    expect(parseRange("bytes=-0", 100)).toBe("unsatisfiable");
    expect(parseRange("bytes=0-", 0)).toBe("unsatisfiable");
  });
});
