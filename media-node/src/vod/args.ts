// FFmpeg arguments for processing an upload, as pure functions (tested without processes).
//
// The ladder is the live pipeline's (transcode/args.ts: one decode, a scale cascade, keyframes forced at every
// segment boundary on every rung, audio encoded once as its own rendition), read from a file instead of RTMP.
// The storyboard sprite, the poster and the thumbnails are more outputs of the same process: the decoded picture
// is split into branches that each keep only the frames they need (the sprite samples at the storyboard interval,
// the poster lets the `thumbnail` filter pick the most representative of a batch a tenth in, never the black
// first frame of a fade-in; the thumbnails take one frame at each of three times), so none of them costs a
// second decode. Separate passes each had to seek and decode from a keyframe before their frame: measured on a
// 60 s 720p clip, ~3.8 s of CPU for the poster and three thumbnails against under 0.5 s as branches of the one pass.

import { buildLiveArgs, type FfmpegPlan } from "../transcode/args.ts";
import type { Ladder } from "../transcode/ladder.ts";
import type { StoryboardGeometry } from "./storyboard.ts";

export interface VodArgsOptions {
  input: string;
  outDir: string;
  ladder: Ladder;
  segmentS: number;
  preset: string;
  /** libx264 options on top of the preset (`key=value:key=value`), for every video rung */
  x264Params?: string | undefined;
  /** constant output frame rate of the video rungs (frames are duplicated or dropped to keep it) */
  fps?: number | undefined;
  /** where the sprite sheets go (`<dir>/sprite_%03d.jpg`); none for audio-only sources */
  storyboard?: { dir: string; geometry: StoryboardGeometry } | undefined;
  /** poster, small poster and thumbnails; none for audio-only sources */
  stills?: VodStills | undefined;
}

/** The storyboard branch of the filter graph: frames every interval, scaled, tiled into sheets. */
export function storyboardFilter(g: StoryboardGeometry, input: string, output: string): string {
  const ms = Math.round(g.intervalS * 1000);
  return `${input}fps=fps=1000/${ms}:round=down,scale=${g.tileWidth}:${g.tileHeight}:flags=fast_bilinear,tile=${g.cols}x${g.rows}${output}`;
}

/** Where the poster, its small copy and the thumbnails go, and what they are made from. */
export interface VodStills {
  /** `poster.jpg`, `poster-sm.jpg` and `thumb-<n>.jpg` (from 1) are written here */
  dir: string;
  durationS: number;
  /** the picture as displayed (after rotation) */
  picture: { width: number; height: number };
}

export const POSTER_FILE = "poster.jpg";
export const POSTER_SMALL_FILE = "poster-sm.jpg";
/** image2 numbering: thumb-1.jpg, thumb-2.jpg, ... */
export const THUMBNAIL_PATTERN = "thumb-%d.jpg";

/**
 * The poster branch: from a tenth in, POSTER_BATCH_FRAMES frames (scaled first, so the batch the `thumbnail`
 * filter holds is small even for a 4K source), the most representative of them, in two sizes.
 */
export function posterFilter(stills: VodStills, input: string, big: string, small: string): string {
  const b = fitLongSide(stills.picture, POSTER_LONG_SIDE);
  const s = fitLongSide(stills.picture, POSTER_SMALL_LONG_SIDE);
  // The second trim counts the frames the first one lets through, so the batch ends and so does the branch.
  return `${input}trim=start=${posterSeekS(stills.durationS)},trim=end_frame=${POSTER_BATCH_FRAMES},scale=${b.width}:${b.height},thumbnail=n=${POSTER_BATCH_FRAMES},split=2${big}[psm];[psm]scale=${s.width}:${s.height}${small}`;
}

/** The thumbnails branch: the first frame at or after each of thumbnailTimes(), scaled (only those three are). */
export function thumbnailsFilter(stills: VodStills, input: string, output: string): string {
  const size = fitLongSide(stills.picture, THUMBNAIL_LONG_SIDE);
  // One frame per time: the first at or after it, while the last one picked is still before it. Commas inside
  // the expression are escaped for the filter graph's own parser.
  const picks = thumbnailTimes(stills.durationS).map((t, i) => (i === 0 ? `isnan(prev_selected_t)*gte(t\\,${t})` : `gte(t\\,${t})*lt(prev_selected_t\\,${t})`));
  return `${input}select=${picks.join("+")},scale=${size.width}:${size.height}${output}`;
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
  const preset = outputArgs.indexOf("-preset");
  if (opts.x264Params && preset >= 0) outputArgs.splice(preset + 2, 0, "-x264-params", opts.x264Params);
  const plan = { ...live, outputArgs };
  if (!opts.storyboard && !opts.stills) return plan;
  const at = plan.outputArgs.indexOf("-filter_complex");
  const graph = plan.outputArgs[at + 1];
  if (at < 0 || !graph?.startsWith("[0:v]")) throw new Error("buildVodArgs: a storyboard or poster needs an encoded video ladder");
  // Every branch takes the one decoded picture (split hands on references, not copies).
  const branches = ["[ladder]"];
  const chains = [graph.replace(/^\[0:v\]/, "[ladder]")];
  // Outputs before the HLS output: options before an output file belong to that output only.
  const outputs: string[] = [];
  if (opts.storyboard) {
    branches.push("[sb]");
    chains.push(storyboardFilter(opts.storyboard.geometry, "[sb]", "[sprite]"));
    // Passthrough timing writes each sheet once (no frame duplication to a constant rate).
    outputs.push("-map", "[sprite]", "-c:v", "mjpeg", "-q:v", "5", "-fps_mode", "passthrough", "-f", "image2", `${opts.storyboard.dir}/sprite_%03d.jpg`);
  }
  if (opts.stills) {
    const dir = opts.stills.dir;
    branches.push("[pst]", "[thm]");
    chains.push(posterFilter(opts.stills, "[pst]", "[poster]", "[postersm]"), thumbnailsFilter(opts.stills, "[thm]", "[thumbs]"));
    outputs.push(
      "-map", "[poster]", "-c:v", "mjpeg", "-q:v", "3", "-frames:v", "1", "-update", "1", "-f", "image2", `${dir}/${POSTER_FILE}`,
      "-map", "[postersm]", "-c:v", "mjpeg", "-q:v", "4", "-frames:v", "1", "-update", "1", "-f", "image2", `${dir}/${POSTER_SMALL_FILE}`,
      "-map", "[thumbs]", "-c:v", "mjpeg", "-q:v", "4", "-fps_mode", "passthrough", "-frames:v", String(THUMBNAIL_COUNT), "-f", "image2", `${dir}/${THUMBNAIL_PATTERN}`,
    );
  }
  const withExtras = `[0:v]split=${branches.length}${branches.join("")};${chains.join(";")}`;
  const rest = [...plan.outputArgs.slice(0, at), ...plan.outputArgs.slice(at + 2)];
  return { ...plan, outputArgs: ["-filter_complex", withExtras, ...outputs, ...rest] };
}

/** Where the poster starts looking: a tenth in, at least 1 s, at most half way (0 for very short files). */
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

export const THUMBNAIL_COUNT = 3;

/** Where the extra thumbnails are taken: evenly inside the video, never at its very start or end. */
export function thumbnailTimes(durationS: number, count = THUMBNAIL_COUNT): number[] {
  return Array.from({ length: count }, (_, i) => Math.round(((durationS * (i + 1)) / (count + 1)) * 1000) / 1000);
}

export const THUMBNAIL_LONG_SIDE = 640;
