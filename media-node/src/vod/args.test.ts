import { describe, expect, it } from "vitest";
import { toArgv } from "../transcode/args.ts";
import { selectLadder } from "../transcode/ladder.ts";
import { buildVodArgs, fitLongSide, posterFilter, posterSeekS, storyboardFilter, thumbnailsFilter, thumbnailTimes } from "./args.ts";
import { storyboardGeometry } from "./storyboard.ts";

const settings = { rungs: ["720p", "480p", "360p"] as const, passthrough: false, separateAudio: true };

describe("buildVodArgs", () => {
  const ladder = selectLadder({ video: { width: 1280, height: 720, fps: 30 }, audio: { channels: 2 } }, { ...settings, rungs: [...settings.rungs] });
  const geometry = storyboardGeometry(60, { width: 1280, height: 720 });
  const plan = buildVodArgs({ input: "/w/source", outDir: "/w/hls", ladder, segmentS: 4, preset: "veryfast", storyboard: { dir: "/w/sb", geometry } });
  const argv = toArgv(plan);

  it("decodes once: the storyboard is a branch of the ladder's filter graph", () => {
    const graph = argv[argv.indexOf("-filter_complex") + 1]!;
    expect(graph.startsWith("[0:v]split=2[ladder][sb];[ladder]scale=1280:720")).toBe(true);
    expect(graph).toContain(";[sb]fps=fps=1000/1200:round=down,scale=160:90:flags=fast_bilinear,tile=10x5[sprite]");
    expect(argv.filter((a) => a === "-i")).toHaveLength(1);
    expect(argv.filter((a) => a === "-filter_complex")).toHaveLength(1);
  });

  it("the sprite output comes before the HLS output, with its own options only", () => {
    const sprite = argv.indexOf("/w/sb/sprite_%03d.jpg");
    expect(argv.slice(sprite - 10, sprite)).toEqual(["-map", "[sprite]", "-c:v", "mjpeg", "-q:v", "5", "-fps_mode", "passthrough", "-f", "image2"]);
    expect(argv.indexOf("-preset")).toBeGreaterThan(sprite);
    expect(argv.at(-1)).toBe("/w/hls/%v/index.m3u8");
  });

  it("keeps every segment in FFmpeg's own playlist and uses the VOD segment length", () => {
    expect(argv[argv.indexOf("-hls_list_size") + 1]).toBe("0");
    expect(argv[argv.indexOf("-hls_time") + 1]).toBe("4");
    expect(argv[argv.indexOf("-force_key_frames") + 1]).toBe("expr:gte(t,n_forced*4)");
  });

  it("encodes at a constant frame rate when given one (live keeps the source's timestamps)", () => {
    const cfr = toArgv(buildVodArgs({ input: "/w/source", outDir: "/w/hls", ladder, segmentS: 4, preset: "veryfast", fps: 30 }));
    expect(cfr.join(" ")).toContain("-fps_mode cfr -r 30");
    expect(cfr).not.toContain("vfr");
    expect(argv.join(" ")).toContain("-fps_mode vfr");
  });

  it("libx264 options go with the preset, for every rung; none without them", () => {
    const tuned = toArgv(buildVodArgs({ input: "/w/source", outDir: "/w/hls", ladder, segmentS: 4, preset: "superfast", x264Params: "mbtree=1:rc-lookahead=10" }));
    expect(tuned.slice(tuned.indexOf("-preset"), tuned.indexOf("-preset") + 4)).toEqual(["-preset", "superfast", "-x264-params", "mbtree=1:rc-lookahead=10"]);
    expect(argv).not.toContain("-x264-params");
  });

  it("audio only: no filter graph and no sprite", () => {
    const audioOnly = selectLadder({ audio: { channels: 2 } }, { ...settings, rungs: [...settings.rungs] });
    const a = toArgv(buildVodArgs({ input: "/w/source", outDir: "/w/hls", ladder: audioOnly, segmentS: 4, preset: "veryfast" }));
    expect(a).not.toContain("-filter_complex");
    expect(a.join(" ")).not.toContain("sprite");
    expect(a[a.indexOf("-var_stream_map") + 1]).toBe("a:0,name:audio");
  });

  it("poster and thumbnails are more branches of the same decode, each with its own outputs before the HLS one", () => {
    const stills = { dir: "/w/st", durationS: 60, picture: { width: 1280, height: 720 } };
    const all = toArgv(buildVodArgs({ input: "/w/source", outDir: "/w/hls", ladder, segmentS: 4, preset: "veryfast", storyboard: { dir: "/w/sb", geometry }, stills }));
    const graph = all[all.indexOf("-filter_complex") + 1]!;
    expect(graph.startsWith("[0:v]split=4[ladder][sb][pst][thm];[ladder]scale=1280:720")).toBe(true);
    expect(graph).toContain(`;${posterFilter(stills, "[pst]", "[poster]", "[postersm]")};`);
    expect(graph.endsWith(`;${thumbnailsFilter(stills, "[thm]", "[thumbs]")}`)).toBe(true);
    expect(all.filter((a) => a === "-i")).toHaveLength(1);
    const poster = all.indexOf("/w/st/poster.jpg");
    expect(all.slice(poster - 12, poster)).toEqual(["-map", "[poster]", "-c:v", "mjpeg", "-q:v", "3", "-frames:v", "1", "-update", "1", "-f", "image2"]);
    expect(all).toContain("/w/st/poster-sm.jpg");
    const thumbs = all.indexOf("/w/st/thumb-%d.jpg");
    expect(all.slice(thumbs - 4, thumbs)).toEqual(["-frames:v", "3", "-f", "image2"]);
    expect(all.indexOf("-preset")).toBeGreaterThan(thumbs);
    expect(all.at(-1)).toBe("/w/hls/%v/index.m3u8");
  });

  it("refuses a storyboard without a video ladder", () => {
    const audioOnly = selectLadder({ audio: { channels: 2 } }, { ...settings, rungs: [...settings.rungs] });
    expect(() => buildVodArgs({ input: "i", outDir: "o", ladder: audioOnly, segmentS: 4, preset: "veryfast", storyboard: { dir: "s", geometry } })).toThrow(/video ladder/);
  });

  it("storyboardFilter samples at whole milliseconds", () => {
    expect(storyboardFilter(storyboardGeometry(600, { width: 640, height: 360 }), "[a]", "[b]")).toBe("[a]fps=fps=1000/10000:round=down,scale=160:90:flags=fast_bilinear,tile=10x6[b]");
  });
});

describe("poster and thumbnails", () => {
  it("the poster looks from a tenth in (at least 1 s, at most half way)", () => {
    expect(posterSeekS(60)).toBe(6);
    expect(posterSeekS(5)).toBe(1);
    expect(posterSeekS(1.5)).toBe(0);
    expect(posterSeekS(3600)).toBe(360);
  });

  it("the poster branch takes a batch of frames a tenth in, scaled before the pick, in two sizes", () => {
    const f = posterFilter({ dir: "/w", durationS: 60, picture: { width: 1920, height: 1080 } }, "[in]", "[big]", "[small]");
    expect(f).toBe("[in]trim=start=6,trim=end_frame=60,scale=1280:720,thumbnail=n=60,split=2[big][psm];[psm]scale=320:180[small]");
  });

  it("never scales up, keeps portrait pictures portrait", () => {
    expect(fitLongSide({ width: 640, height: 360 }, 1280)).toEqual({ width: 640, height: 360 });
    expect(fitLongSide({ width: 1080, height: 1920 }, 320)).toEqual({ width: 180, height: 320 });
    expect(fitLongSide({ width: 641, height: 359 }, 1280)).toEqual({ width: 642, height: 360 });
  });

  it("thumbnails are spread inside the video", () => {
    expect(thumbnailTimes(60)).toEqual([15, 30, 45]);
    // One frame at or after each time; the commas are escaped for the filter graph parser.
    expect(thumbnailsFilter({ dir: "/w", durationS: 60, picture: { width: 1280, height: 720 } }, "[t]", "[o]")).toBe(
      "[t]select=isnan(prev_selected_t)*gte(t\\,15)+gte(t\\,30)*lt(prev_selected_t\\,30)+gte(t\\,45)*lt(prev_selected_t\\,45),scale=640:360[o]",
    );
  });
});
