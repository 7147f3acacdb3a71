import { describe, expect, it } from "vitest";
import { redactPullKey, restartDelayMs } from "./transcoder.ts";

describe("redactPullKey", () => {
  it("hides the key wherever FFmpeg quotes the URL", () => {
    expect(redactPullKey("rtmp://127.0.0.1:1935/live/s?pull=abc123: Connection refused")).toBe("rtmp://127.0.0.1:1935/live/s?pull=…: Connection refused");
    expect(redactPullKey("Input #0, flv, from 'rtmp://h/live/s?pull=k-1_2':")).toBe("Input #0, flv, from 'rtmp://h/live/s?pull=…':");
    expect(redactPullKey("no url here")).toBe("no url here");
  });
});

describe("restartDelayMs", () => {
  it("doubles from 250 ms and stops at 5 s", () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(restartDelayMs)).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000]);
  });
});
