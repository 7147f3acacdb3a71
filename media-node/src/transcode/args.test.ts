import { describe, expect, it } from "vitest";
import { buildLiveArgs, buildLowLatencyArgs, ladderFilterGraph, toArgv } from "./args.ts";
import { selectLadder } from "./ladder.ts";

const rungs = { rungs: ["720p", "480p", "360p"] as const, passthrough: false, separateAudio: false };

function valueOf(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

describe("buildLiveArgs", () => {
  const ladder = selectLadder({ video: { width: 1280, height: 720, fps: 30 }, audio: {} }, rungs);
  const plan = buildLiveArgs({ input: "rtmp://127.0.0.1:1935/live/abc?pull=k", outDir: "/w/e0", ladder, segmentS: 2, preset: "veryfast", rwTimeoutS: 3 });

  it("decodes once and scales the rungs in a cascade, each from the next larger one", () => {
    const graph = valueOf(plan.outputArgs, "-filter_complex")!;
    expect(graph).toBe(
      "[0:v]scale=1280:720:flags=bicubic,format=yuv420p,split=2[v0][c0];" +
        "[c0]scale=854:480:flags=bicubic,split=2[v1][c1];" +
        "[c1]scale=640:360:flags=bicubic[v2]",
    );
    expect(plan.outputArgs.filter((a) => a === "libx264")).toHaveLength(3);
  });

  it("forces a keyframe at every segment boundary, the same for all rungs, and no scene-cut keyframes", () => {
    expect(valueOf(plan.outputArgs, "-force_key_frames")).toBe("expr:gte(t,n_forced*2)");
    expect(valueOf(plan.outputArgs, "-sc_threshold")).toBe("0");
    expect(valueOf(plan.outputArgs, "-g")).toBe("60");
    expect(valueOf(plan.outputArgs, "-hls_time")).toBe("2");
  });

  it("keeps the source's frame timing (no duplicated last frame that would end the recording with a one-frame segment)", () => {
    expect(valueOf(plan.outputArgs, "-fps_mode")).toBe("vfr");
    const audioOnly = buildLiveArgs({ input: "x", outDir: "/o", ladder: selectLadder({ audio: {} }, rungs), segmentS: 2, preset: "veryfast" });
    expect(audioOnly.outputArgs).not.toContain("-fps_mode");
  });

  it("writes fMP4 HLS with independent segments and one variant per rung, each with AAC audio", () => {
    expect(valueOf(plan.outputArgs, "-hls_segment_type")).toBe("fmp4");
    expect(valueOf(plan.outputArgs, "-hls_flags")).toBe("independent_segments");
    expect(valueOf(plan.outputArgs, "-c:a")).toBe("aac");
    // one argv entry with spaces inside: never split
    expect(valueOf(plan.outputArgs, "-var_stream_map")).toBe("v:0,a:0,name:720p v:1,a:1,name:480p v:2,a:2,name:360p");
    expect(plan.output).toBe("/w/e0/%v/index.m3u8");
    expect(plan.variants.map((v) => v.name)).toEqual(["720p", "480p", "360p"]);
  });

  it("sets per-rung bitrate, peak, buffer and level", () => {
    expect(valueOf(plan.outputArgs, "-b:v:0")).toBe("3000k");
    expect(valueOf(plan.outputArgs, "-maxrate:v:1")).toBe("1210k");
    expect(valueOf(plan.outputArgs, "-level:v:0")).toBe("3.1");
  });

  it("gives up on a silent RTMP input after rw_timeout (microseconds)", () => {
    expect(valueOf(plan.inputArgs, "-rw_timeout")).toBe("3000000");
    const argv = toArgv(plan);
    expect(argv.indexOf("-rw_timeout")).toBeLessThan(argv.indexOf("-i"));
    expect(argv.at(-1)).toBe(plan.output);
  });

  it("handles video-only sources (no audio maps)", () => {
    const v = buildLiveArgs({ input: "x", outDir: "/o", ladder: selectLadder({ video: { width: 640, height: 360, fps: 25 } }, rungs), segmentS: 1, preset: "veryfast" });
    expect(v.outputArgs).not.toContain("-c:a");
    expect(valueOf(v.outputArgs, "-var_stream_map")).toBe("v:0,name:360p");
    expect(valueOf(v.outputArgs, "-g")).toBe("25");
    expect(valueOf(v.outputArgs, "-force_key_frames")).toBe("expr:gte(t,n_forced*1)");
  });

  it("handles audio-only sources (one audio variant, no filter graph)", () => {
    const a = buildLiveArgs({ input: "x", outDir: "/o", ladder: selectLadder({ audio: {} }, rungs), segmentS: 2, preset: "veryfast" });
    expect(a.outputArgs).not.toContain("-filter_complex");
    expect(valueOf(a.outputArgs, "-var_stream_map")).toBe("a:0,name:audio");
    expect(a.variants).toEqual([expect.objectContaining({ name: "audio", video: undefined })]);
  });

  it("copies the source for a passthrough rung next to encoded ones", () => {
    const p = buildLiveArgs({ input: "x", outDir: "/o", ladder: selectLadder({ video: { width: 1280, height: 720, fps: 30, codec: "h264" }, audio: {} }, { rungs: ["360p"], passthrough: true, separateAudio: false }), segmentS: 2, preset: "veryfast" });
    expect(valueOf(p.outputArgs, "-c:v:0")).toBe("copy");
    expect(valueOf(p.outputArgs, "-c:v:1")).toBe("libx264");
    expect(valueOf(p.outputArgs, "-var_stream_map")).toBe("v:0,a:0,name:source v:1,a:1,name:360p");
  });

  it("encodes the audio once as a separate rendition every video variant refers to (default)", () => {
    const ladder = selectLadder({ video: { width: 1280, height: 720, fps: 30 }, audio: {} }, { rungs: ["720p", "360p"], passthrough: false });
    expect(ladder.separateAudio).toBe(true);
    const p = buildLiveArgs({ input: "x", outDir: "/o", ladder, segmentS: 2, preset: "veryfast" });
    expect(p.outputArgs.filter((a) => a === "0:a:0")).toHaveLength(1);
    expect(valueOf(p.outputArgs, "-var_stream_map")).toBe("v:0,agroup:aud,name:720p v:1,agroup:aud,name:360p a:0,agroup:aud,name:audio");
    expect(p.variants.map((v) => [v.name, v.rendition, Boolean(v.audio), Boolean(v.audioGroup)])).toEqual([
      ["720p", false, false, true],
      ["360p", false, false, true],
      ["audio", true, true, false],
    ]);
  });

  it("encodes a mono source's audio as mono (-ac 1) and a portrait source's rungs upright", () => {
    const ladder = selectLadder({ video: { width: 720, height: 1280, fps: 30 }, audio: { channels: 1 } }, rungs);
    const p = buildLiveArgs({ input: "x", outDir: "/o", ladder, segmentS: 2, preset: "veryfast" });
    expect(valueOf(p.outputArgs, "-ac")).toBe("1");
    expect(valueOf(p.outputArgs, "-filter_complex")).toBe(
      "[0:v]scale=720:1280:flags=bicubic,format=yuv420p,split=2[v0][c0];" +
        "[c0]scale=480:854:flags=bicubic,split=2[v1][c1];" +
        "[c1]scale=360:640:flags=bicubic[v2]",
    );
    const stereo = buildLiveArgs({ input: "x", outDir: "/o", ladder: selectLadder({ audio: { channels: 2 } }, rungs), segmentS: 2, preset: "veryfast" });
    expect(valueOf(stereo.outputArgs, "-ac")).toBe("2");
  });

  it("refuses a source with no tracks", () => {
    expect(() => buildLiveArgs({ input: "x", outDir: "/o", ladder: { video: [], audio: undefined, separateAudio: false }, segmentS: 2, preset: "veryfast" })).toThrow(/neither video nor audio/);
  });
});

describe("ladderFilterGraph", () => {
  it("scales a single rung straight from the source, with no split", () => {
    expect(ladderFilterGraph([{ width: 640, height: 360 }])).toBe("[0:v]scale=640:360:flags=bicubic,format=yuv420p[v0]");
  });

  it("never scales up: rungs given out of order still cascade from the largest, labelled by their own index", () => {
    expect(ladderFilterGraph([{ width: 640, height: 360 }, { width: 1920, height: 1080 }, { width: 1280, height: 720 }])).toBe(
      "[0:v]scale=1920:1080:flags=bicubic,format=yuv420p,split=2[v1][c0];" +
        "[c0]scale=1280:720:flags=bicubic,split=2[v2][c1];" +
        "[c1]scale=640:360:flags=bicubic[v0]",
    );
  });
});

describe("buildLowLatencyArgs", () => {
  const ladder = selectLadder({ video: { width: 1280, height: 720, fps: 30 }, audio: {} }, { rungs: ["720p", "360p"], passthrough: false });
  const plan = buildLowLatencyArgs({ input: "rtmp://x/live/a?pull=k", ladder, segmentS: 2, preset: "veryfast", fps: 30, fragmentUs: 330333, rwTimeoutS: 3 });
  const outputs = (p: typeof plan) => {
    const argv = toArgv(p);
    const at = argv.indexOf("-i") + 2;
    const list: string[][] = [];
    let cur: string[] = [];
    for (const a of argv.slice(at)) {
      if (/^pipe:\d+$/.test(a)) {
        list.push([...cur, a]);
        cur = [];
      } else cur.push(a);
    }
    return list;
  };

  it("writes one fragmented MP4 per rendition to its own pipe, audio muxed into each", () => {
    expect(plan.pipes.map((p) => [p.variant.name, p.fd])).toEqual([
      ["720p", 3],
      ["360p", 4],
    ]);
    const outs = outputs(plan);
    expect(outs.map((o) => o.at(-1))).toEqual(["pipe:3", "pipe:4"]);
    for (const o of outs) {
      expect(valueOf(o, "-f")).toBe("mp4");
      expect(valueOf(o, "-movflags")).toBe("empty_moov+default_base_moof+frag_keyframe+skip_trailer");
      expect(valueOf(o, "-frag_duration")).toBe("330333");
      expect(valueOf(o, "-flush_packets")).toBe("1");
      expect(o.filter((a) => a === "0:a:0")).toHaveLength(1);
      expect(valueOf(o, "-af")).toBe("asetpts=PTS+1024/SR/TB");
    }
    expect(plan.variants.every((v) => v.audio && !v.rendition && !v.audioGroup)).toBe(true);
  });

  it("encodes for latency: zerolatency, no B-frames, GOP = segment with a forced keyframe at each, constant frame rate", () => {
    for (const o of outputs(plan)) {
      expect(valueOf(o, "-tune")).toBe("zerolatency");
      expect(valueOf(o, "-bf")).toBe("0");
      expect(valueOf(o, "-g")).toBe("60");
      expect(valueOf(o, "-keyint_min")).toBe("60");
      expect(valueOf(o, "-sc_threshold")).toBe("0");
      expect(valueOf(o, "-force_key_frames")).toBe("expr:gte(t,n_forced*2)");
      expect(valueOf(o, "-r")).toBe("30");
      expect(valueOf(o, "-fps_mode")).toBe("cfr");
    }
    expect(valueOf(plan.outputArgs, "-filter_complex")).toBe(ladderFilterGraph(ladder.video));
  });

  it("makes an audio-only source one audio output, and refuses copied rungs", () => {
    const a = buildLowLatencyArgs({ input: "x", ladder: selectLadder({ audio: {} }, rungs), segmentS: 2, preset: "veryfast", fps: 30, fragmentUs: 338000 });
    expect(a.pipes.map((p) => [p.variant.name, p.fd])).toEqual([["audio", 3]]);
    expect(a.outputArgs).not.toContain("-filter_complex");
    expect(a.outputArgs).not.toContain("-af");
    const copy = selectLadder({ video: { width: 1280, height: 720, fps: 30, codec: "h264" }, audio: {} }, { rungs: ["360p"], passthrough: true });
    expect(() => buildLowLatencyArgs({ input: "x", ladder: copy, segmentS: 2, preset: "veryfast", fps: 30, fragmentUs: 330333 })).toThrow(/copied rung/);
  });
});
