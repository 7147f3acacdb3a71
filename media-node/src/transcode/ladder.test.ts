import { describe, expect, it } from "vitest";
import { avcCodecString, h264Level, selectLadder, variantBandwidth } from "./ladder.ts";

const all = { rungs: ["1080p", "720p", "480p", "360p"] as const, passthrough: false };

describe("selectLadder", () => {
  it("encodes every rung up to a 1080p source with Apple's bitrates, highest first", () => {
    const l = selectLadder({ video: { width: 1920, height: 1080, fps: 30 }, audio: {} }, all);
    expect(l.video.map((r) => [r.name, r.width, r.height, r.kbps])).toEqual([
      ["1080p", 1920, 1080, 6000],
      ["720p", 1280, 720, 3000],
      ["480p", 854, 480, 1100],
      ["360p", 640, 360, 365],
    ]);
    expect(l.audio).toEqual({ kbps: 128, channels: 2, sampleRate: 48000 });
    expect(l.video.every((r) => r.maxKbps === Math.round(r.kbps * 1.1))).toBe(true);
  });

  it("never upscales: a 720p source gets 720p and below", () => {
    const l = selectLadder({ video: { width: 1280, height: 720, fps: 30 } }, all);
    expect(l.video.map((r) => r.name)).toEqual(["720p", "480p", "360p"]);
    expect(l.audio).toBeUndefined();
  });

  it("keeps the source's aspect ratio with even dimensions", () => {
    const l = selectLadder({ video: { width: 1000, height: 562, fps: 30 } }, all);
    expect(l.video.map((r) => [r.name, r.width, r.height])).toEqual([
      ["480p", 854, 480],
      ["360p", 640, 360],
    ]);
  });

  it("names portrait rungs by their short side: a 720x1280 phone stream keeps 720x1280 at the top", () => {
    const l = selectLadder({ video: { width: 720, height: 1280, fps: 30 }, audio: { channels: 2 } }, all);
    expect(l.video.map((r) => [r.name, r.width, r.height, r.kbps])).toEqual([
      ["720p", 720, 1280, 3000],
      ["480p", 480, 854, 1100],
      ["360p", 360, 640, 365],
    ]);
    // same pixel count as the landscape rung, so the same level
    expect(l.video[0]!.level).toBe("3.1");
    const tall = selectLadder({ video: { width: 1080, height: 1920, fps: 30 } }, all);
    expect(tall.video[0]).toMatchObject({ name: "1080p", width: 1080, height: 1920, level: "4.0" });
  });

  it("gives a portrait source smaller than every rung one rung at its own size, named by its short side", () => {
    const l = selectLadder({ video: { width: 180, height: 320, fps: 30 } }, all);
    expect(l.video).toEqual([expect.objectContaining({ name: "180p", width: 180, height: 320 })]);
  });

  it("keeps mono audio mono, stereo stereo, and caps more channels at stereo", () => {
    const channels = (n: number | undefined) => selectLadder({ audio: { channels: n } }, all).audio?.channels;
    expect(channels(1)).toBe(1);
    expect(channels(2)).toBe(2);
    expect(channels(6)).toBe(2);
    // unknown (no metadata, nothing probed): stereo, which plays everywhere
    expect(channels(undefined)).toBe(2);
    expect(channels(0)).toBe(2);
    expect(selectLadder({ video: { width: 640, height: 360 }, audio: { channels: 1 } }, all).audio).toEqual({ kbps: 128, channels: 1, sampleRate: 48000 });
  });

  it("gives a source smaller than every rung one rung at its own size", () => {
    const l = selectLadder({ video: { width: 320, height: 180, fps: 30 } }, all);
    expect(l.video).toHaveLength(1);
    expect(l.video[0]).toMatchObject({ name: "180p", width: 320, height: 180, mode: "encode" });
  });

  it("raises bitrates by half above 30 fps", () => {
    const l = selectLadder({ video: { width: 1280, height: 720, fps: 60 } }, { rungs: ["720p"], passthrough: false });
    expect(l.video[0]!.kbps).toBe(4500);
    expect(l.video[0]!.level).toBe("3.2");
  });

  it("adds a passthrough copy rung for H.264 sources only", () => {
    const h264 = selectLadder({ video: { width: 1280, height: 720, fps: 30, codec: "h264" } }, { rungs: ["360p"], passthrough: true });
    expect(h264.video.map((r) => [r.name, r.mode])).toEqual([
      ["source", "copy"],
      ["360p", "encode"],
    ]);
    const hevc = selectLadder({ video: { width: 1280, height: 720, fps: 30, codec: "hevc" } }, { rungs: ["360p"], passthrough: true });
    expect(hevc.video.map((r) => r.name)).toEqual(["360p"]);
  });

  it("audio-only sources get no video rungs", () => {
    const l = selectLadder({ audio: { channels: 1 } }, all);
    expect(l.video).toEqual([]);
    expect(l.audio).toBeDefined();
  });
});

describe("H.264 levels and codec strings", () => {
  it("picks the lowest level that fits", () => {
    expect(h264Level(640, 360, 30)).toBe("3.0");
    expect(h264Level(1280, 720, 30)).toBe("3.1");
    expect(h264Level(1920, 1080, 30)).toBe("4.0");
    expect(h264Level(1920, 1080, 60)).toBe("4.2");
  });
  it("writes RFC 6381 avc1 strings", () => {
    expect(avcCodecString("3.1")).toBe("avc1.64001f");
    expect(avcCodecString("4.0")).toBe("avc1.640028");
  });
  it("counts audio and overhead in BANDWIDTH", () => {
    const bw = variantBandwidth({ name: "x", mode: "encode", width: 2, height: 2, fps: 30, kbps: 1000, maxKbps: 1100, bufKbps: 1500, level: "3.0" }, { kbps: 128, channels: 2, sampleRate: 48000 });
    expect(bw).toEqual({ peak: Math.round(1228 * 1050), average: Math.round(1128 * 1050) });
  });
});
