// FFmpeg arguments for processing an upload, as pure functions (tested without processes).
//
// The ladder is the live pipeline's (transcode/args.ts: one decode, a scale cascade, keyframes forced at every
// segment boundary on every rung, audio encoded once as its own rendition), read from a file instead of RTMP.
// The storyboard sprite is one more output of the same process: the decoded picture is split once more and
// sampled at the storyboard interval, so the sheets cost no second decode. The poster is a separate short pass
// that seeks into the file and lets the `thumbnail` filter pick the most representative frame of a batch
// (never a black first frame of a fade-in).

import { buildLiveArgs, type FfmpegPlan } from "../transcode/args.ts";
import type { Ladder } from "../transcode/ladder.ts";
import type { StoryboardGeometry } from "./storyboard.ts";

export interface VodArgsOptions {
  input: string;
  outDir: string;
  ladder: Ladder;
  segmentS: number;
  preset: string;
  /** constant output frame rate of the video rungs (frames are duplicated or dropped to keep it) */
  fps?: number | undefined;
  /** where the sprite sheets go (`<dir>/sprite_%03d.jpg`); none for audio-only sources */
  storyboard?: { dir: string; geometry: StoryboardGeometry } | undefined;
}

/** The storyboard branch of the filter graph: frames every interval, scaled, tiled into sheets. */
export function storyboardFilter(g: StoryboardGeometry, input: string, output: string): string {
  const ms = Math.round(g.intervalS * 1000);
  return `${input}fps=fps=1000/${ms}:round=down,scale=${g.tileWidth}:${g.tileHeight}:flags=fast_bilinear,tile=${g.cols}x${g.rows}${output}`;
}

export function buildVodArgs(opts: VodArgsOptions): FfmpegPlan {
  // listSize 0: FFmpeg keeps every segment in its own playlist, so none can slide out before the publisher reads it.
  const live = buildLiveArgs({ input: opts.input, outDir: opts.outDir, ladder: opts.ladder, segmentS: opts.segmentS, preset: opts.preset, listSize: 0 });
  // Live keeps the broadcaster's timestamps; a file is encoded at a constant rate instead. A variable-rate
  // recording (phones, screen recorders) otherwise gets segment durations in the playlist that undercount the
  // media (measured: the last segment of a 5.9 s VFR clip listed as 1.2 s instead of 1.9 s), and HLS players
  // place segments on the timeline by those durations.
  const vfr = live.outputArgs.indexOf("-fps_mode");
  const outputArgs = [...live.outputArgs];
  if (opts.fps && vfr >= 0 && outputArgs[vfr + 1] === "vfr") outputArgs.splice(vfr, 2, "-fps_mode", "cfr", "-r", String(opts.fps));
  const plan = { ...live, outputArgs };
  if (!opts.storyboard) return plan;
  const at = plan.outputArgs.indexOf("-filter_complex");
  const graph = plan.outputArgs[at + 1];
  if (at < 0 || !graph?.startsWith("[0:v]")) throw new Error("buildVodArgs: a storyboard needs an encoded video ladder");
  const withSprite = `[0:v]split=2[ladder][sb];${graph.replace(/^\[0:v\]/, "[ladder]")};${storyboardFilter(opts.storyboard.geometry, "[sb]", "[sprite]")}`;
  const rest = [...plan.outputArgs.slice(0, at), ...plan.outputArgs.slice(at + 2)];
  // The sprite output comes first: options before an output file belong to that output only. Passthrough timing
  // writes each sheet once (no frame duplication to a constant rate).
  const sprite = ["-map", "[sprite]", "-c:v", "mjpeg", "-q:v", "5", "-fps_mode", "passthrough", "-f", "image2", `${opts.storyboard.dir}/sprite_%03d.jpg`];
  return { ...plan, outputArgs: ["-filter_complex", withSprite, ...sprite, ...rest] };
}

/** When the poster pass starts looking: a tenth in, at least 1 s, at most half way (0 for very short files). */
export function posterSeekS(durationS: number): number {
  if (durationS < 2) return 0;
  return Math.round(Math.min(Math.max(0.1 * durationS, 1), durationS / 2) * 1000) / 1000;
}

const even = (n: number) => Math.max(2, Math.round(n / 2) * 2);

/** A picture scaled so its long side is at most `long` (never up), even dimensions. */
export function fitLongSide(picture: { width: number; height: number }, long: number): { width: number; height: number } {
  const scale = Math.min(1, long / Math.max(picture.width, picture.height));
  return { width: even(picture.width * scale), height: even(picture.height * scale) };
}

export const POSTER_LONG_SIDE = 1280;
export const POSTER_SMALL_LONG_SIDE = 320;
/** frames the thumbnail filter compares (about 2-3 s of video) */
export const POSTER_BATCH_FRAMES = 60;

/** poster.jpg (up to 1280 on the long side) and poster-sm.jpg (320) from one seek and one pick. */
export function buildPosterArgs(opts: { input: string; durationS: number; picture: { width: number; height: number }; poster: string; small: string }): FfmpegPlan {
  const big = fitLongSide(opts.picture, POSTER_LONG_SIDE);
  const small = fitLongSide(opts.picture, POSTER_SMALL_LONG_SIDE);
  const graph = `[0:v]thumbnail=n=${POSTER_BATCH_FRAMES},split=2[p0][p1];[p0]scale=${big.width}:${big.height}[big];[p1]scale=${small.width}:${small.height}[small]`;
  return {
    input: opts.input,
    inputArgs: ["-hide_banner", "-nostdin", "-loglevel", "level+info", "-ss", String(posterSeekS(opts.durationS))],
    outputArgs: ["-filter_complex", graph, "-map", "[big]", "-frames:v", "1", "-q:v", "3", "-update", "1", opts.poster, "-map", "[small]", "-frames:v", "1", "-q:v", "4", "-update", "1"],
    output: opts.small,
    variants: [],
  };
}

/** Where the extra thumbnails are taken: evenly inside the video, never at its very start or end. */
export function thumbnailTimes(durationS: number, count = 3): number[] {
  return Array.from({ length: count }, (_, i) => Math.round(((durationS * (i + 1)) / (count + 1)) * 1000) / 1000);
}

export const THUMBNAIL_LONG_SIDE = 640;

export function buildThumbnailArgs(opts: { input: string; atS: number; picture: { width: number; height: number }; output: string }): FfmpegPlan {
  const size = fitLongSide(opts.picture, THUMBNAIL_LONG_SIDE);
  return {
    input: opts.input,
    inputArgs: ["-hide_banner", "-nostdin", "-loglevel", "level+info", "-ss", String(opts.atS)],
    outputArgs: ["-map", "0:v:0", "-vf", `scale=${size.width}:${size.height}`, "-frames:v", "1", "-q:v", "4", "-update", "1"],
    output: opts.output,
    variants: [],
  };
}
