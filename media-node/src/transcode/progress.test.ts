import { describe, expect, it } from "vitest";
import { sourceFromProbe } from "./probe.ts";
import { openedForWriting } from "./ffmpeg.ts";
import { parseProgressLine } from "./progress.ts";

describe("parseProgressLine", () => {
  it("reads frame, fps, time and speed from a video stats line", () => {
    expect(parseProgressLine("frame=  123 fps= 29.5 q=28.0 q=27.0 size=N/A time=00:00:04.10 bitrate=N/A speed=0.985x")).toEqual({ frame: 123, fps: 29.5, timeS: 4.1, speed: 0.985 });
  });
  it("reads an audio-only stats line (no frame count)", () => {
    expect(parseProgressLine("size=N/A time=00:01:02.50 bitrate=N/A speed=1.01x")).toEqual({ timeS: 62.5, speed: 1.01 });
  });
  it("ignores other lines and negative start times", () => {
    expect(parseProgressLine("[hls @ 0x55] Opening 'seg_1.m4s' for writing")).toBeUndefined();
    expect(parseProgressLine("frame=    0 fps=0.0 q=0.0 size=N/A time=-00:00:00.03 bitrate=N/A speed=N/A")).toEqual({ frame: 0, fps: 0 });
  });
});

describe("sourceFromProbe", () => {
  it("maps ffprobe streams to a source description", () => {
    const info = sourceFromProbe({
      streams: [
        { codec_type: "video", codec_name: "h264", width: 1280, height: 720, avg_frame_rate: "30000/1001" },
        { codec_type: "audio", codec_name: "aac", channels: 2, sample_rate: "44100" },
      ],
    });
    expect(info).toEqual({ video: { width: 1280, height: 720, fps: 29.97, codec: "h264" }, audio: { channels: 2, sampleRate: 44100, codec: "aac" } });
  });
  it("returns an empty description for garbage", () => {
    expect(sourceFromProbe(null)).toEqual({});
    expect(sourceFromProbe({ streams: "nope" as unknown })).toEqual({});
  });
});

describe("openedForWriting", () => {
  it("reads the file FFmpeg says it opens for writing, from an info line with its level prefix", () => {
    expect(openedForWriting("[hls @ 0x560c13da9500] [info] Opening '/w/e0/240p/index.m3u8.tmp' for writing")).toBe("/w/e0/240p/index.m3u8.tmp");
    expect(openedForWriting("[hls @ 0x1] Opening 'out/seg_3.m4s' for writing")).toBe("out/seg_3.m4s");
  });
  it("ignores reads and other lines", () => {
    expect(openedForWriting("[tcp @ 0x1] [info] Opening 'rtmp://h/live/s' for reading")).toBeUndefined();
    expect(openedForWriting("frame=  1 fps=0.0 q=0.0 size=N/A time=00:00:00.00 bitrate=N/A speed=0x")).toBeUndefined();
  });
});
