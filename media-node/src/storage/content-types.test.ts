import { describe, expect, it } from "vitest";
import { CACHE_CONTROL, contentTypeFor, DEFAULT_CONTENT_TYPE } from "./content-types.ts";

describe("content types", () => {
  it.each([
    ["live/abc/master.m3u8", "application/vnd.apple.mpegurl"],
    ["live/abc/720p/seg_1.m4s", "video/iso.segment"],
    ["live/abc/720p/init.mp4", "video/mp4"],
    ["old/seg.ts", "video/mp2t"],
    ["vod/x/thumbs.vtt", "text/vtt; charset=utf-8"],
    ["vod/x/poster.jpg", "image/jpeg"],
    ["vod/x/POSTER.JPEG", "image/jpeg"],
    ["vod/x/sprite.png", "image/png"],
  ])("%s → %s", (key, type) => {
    expect(contentTypeFor(key)).toBe(type);
  });

  it("falls back to octet-stream for unknown or missing extensions, and ignores dots in folder names", () => {
    expect(contentTypeFor("x/file.bin")).toBe(DEFAULT_CONTENT_TYPE);
    expect(contentTypeFor("x/noext")).toBe(DEFAULT_CONTENT_TYPE);
    expect(contentTypeFor("x.m3u8/noext")).toBe(DEFAULT_CONTENT_TYPE);
    expect(contentTypeFor("x/.m3u8")).toBe(DEFAULT_CONTENT_TYPE);
  });

  it("names the Cache-Control the issue asks for", () => {
    expect(CACHE_CONTROL.immutable).toContain("max-age=31536000");
    expect(CACHE_CONTROL.immutable).toContain("immutable");
    expect(CACHE_CONTROL.livePlaylist).toContain("max-age=1");
  });
});
