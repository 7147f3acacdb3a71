import { describe, expect, it } from "vitest";
import { ladderSource, refusalOf, rotationOf, vodFrameRate, vodSourceFromProbe } from "./probe.ts";

const limits = { maxDurationS: 600, maxLongSide: 4096 };

describe("vodSourceFromProbe", () => {
  it("reads duration, picture, frame rate and audio", () => {
    const s = vodSourceFromProbe({
      streams: [
        { codec_type: "video", codec_name: "h264", width: 1280, height: 720, avg_frame_rate: "30000/1001" },
        { codec_type: "audio", codec_name: "aac", channels: 1, sample_rate: "44100" },
      ],
      format: { duration: "12.345600", format_name: "mov,mp4,m4a,3gp,3g2,mj2" },
    });
    expect(s).toEqual({ durationS: 12.346, video: { width: 1280, height: 720, fps: 29.97, codec: "h264", rotation: 0 }, audio: { channels: 1, sampleRate: 44100, codec: "aac" }, formatName: "mov,mp4,m4a,3gp,3g2,mj2" });
  });

  it("a phone's portrait video (landscape frames, rotation metadata) is upright: width and height swapped", () => {
    const s = vodSourceFromProbe({
      streams: [{ codec_type: "video", codec_name: "h264", width: 1920, height: 1080, avg_frame_rate: "30/1", side_data_list: [{ side_data_type: "Display Matrix", rotation: -90 }] }],
      format: { duration: "3" },
    });
    expect(s.video).toMatchObject({ width: 1080, height: 1920, rotation: 90 });
    expect(ladderSource(s).video).toMatchObject({ width: 1080, height: 1920 });
  });

  it("reads the legacy rotate tag, and 180 keeps the shape", () => {
    expect(rotationOf({ tags: { rotate: "270" } })).toBe(270);
    expect(rotationOf({ side_data_list: [{ side_data_type: "Display Matrix", rotation: 180 }] })).toBe(180);
    expect(rotationOf({})).toBe(0);
  });

  it("a cover picture in an audio file is not a video", () => {
    const s = vodSourceFromProbe({
      streams: [
        { codec_type: "audio", codec_name: "mp3", channels: 2, sample_rate: "44100" },
        { codec_type: "video", codec_name: "mjpeg", width: 500, height: 500, disposition: { attached_pic: 1 } },
      ],
      format: { duration: "200" },
    });
    expect(s.video).toBeUndefined();
    expect(s.audio).toMatchObject({ codec: "mp3" });
  });

  it("a variable-rate recording is encoded at its nominal rate (not its lower average), at most 60, 30 when unknown", () => {
    const vfr = vodSourceFromProbe({ streams: [{ codec_type: "video", codec_name: "h264", width: 640, height: 360, avg_frame_rate: "405/22", r_frame_rate: "30/1" }], format: { duration: "6" } });
    expect(vodFrameRate(vfr)).toBe(30);
    expect(ladderSource(vfr).video?.fps).toBe(30);
    const fast = vodSourceFromProbe({ streams: [{ codec_type: "video", codec_name: "h264", width: 640, height: 360, r_frame_rate: "120/1" }], format: { duration: "6" } });
    expect(vodFrameRate(fast)).toBe(60);
    const unknown = vodSourceFromProbe({ streams: [{ codec_type: "video", codec_name: "h264", width: 640, height: 360, r_frame_rate: "90000/1" }], format: { duration: "6" } });
    expect(vodFrameRate(unknown)).toBe(30);
  });

  it("a container time base is not taken for a frame rate (VFR files)", () => {
    const s = vodSourceFromProbe({ streams: [{ codec_type: "video", codec_name: "h264", width: 640, height: 360, avg_frame_rate: "0/0", r_frame_rate: "90000/1" }], format: { duration: "4" } });
    expect(s.video?.fps).toBeUndefined();
  });
});

describe("refusalOf", () => {
  const video = (w: number, h: number, d = 10) => vodSourceFromProbe({ streams: [{ codec_type: "video", codec_name: "h264", width: w, height: h }], format: { duration: String(d) } });

  it("accepts video and audio-only recordings within the limits", () => {
    expect(refusalOf(video(1920, 1080), limits)).toBeUndefined();
    expect(refusalOf(vodSourceFromProbe({ streams: [{ codec_type: "audio", codec_name: "aac" }], format: { duration: "30" } }), limits)).toBeUndefined();
  });

  it("refuses a file with no audio or video, without a duration, too long or too large", () => {
    expect(refusalOf(vodSourceFromProbe({ streams: [{ codec_type: "data", codec_name: "bin_data" }], format: { duration: "3" } }), limits)).toMatch(/no audio or video/);
    expect(refusalOf(vodSourceFromProbe({ streams: [{ codec_type: "video", codec_name: "png", width: 10, height: 10 }], format: {} }), limits)).toMatch(/no duration/);
    expect(refusalOf(video(640, 360, 601), limits)).toMatch(/601 s long; the limit is 600 s/);
    expect(refusalOf(video(8192, 4320), limits)).toMatch(/8192x4320; the limit is 4096/);
  });

  it("throws on output that is not ffprobe's", () => {
    expect(() => vodSourceFromProbe(null)).toThrow();
  });
});
