// What an uploaded file is, and whether the node will process it. The upload's own claims (file name, MIME type)
// are never trusted: ffprobe decides. Parsing and the refusal rules are pure; only probeFile runs a process.

import { execFile } from "node:child_process";
import type { SourceInfo } from "../transcode/ladder.ts";

export interface VodSource {
  durationS: number;
  /** the picture as it is meant to be shown: rotation metadata already applied (FFmpeg autorotates on decode) */
  video: { width: number; height: number; fps: number | undefined; codec: string; rotation: number } | undefined;
  audio: { channels: number | undefined; sampleRate: number | undefined; codec: string } | undefined;
  formatName: string;
}

interface RawStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  channels?: number;
  sample_rate?: string;
  duration?: string;
  nb_frames?: string;
  disposition?: { attached_pic?: number };
  tags?: Record<string, string>;
  side_data_list?: { side_data_type?: string; rotation?: number }[];
}

function rate(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const [n, d] = value.split("/").map(Number);
  if (!n || !d) return undefined;
  const r = n / d;
  // Container time bases (1000/1, 90000/1) show up as "frame rates" of VFR files: not a frame rate.
  return r > 0 && r <= 240 ? Math.round(r * 1000) / 1000 : undefined;
}

/** Clockwise rotation a player must apply, from the display matrix (side data) or the legacy `rotate` tag. */
export function rotationOf(stream: RawStream): number {
  const matrix = stream.side_data_list?.find((d) => d.side_data_type === "Display Matrix" && typeof d.rotation === "number");
  const raw = matrix ? -matrix.rotation! : Number(stream.tags?.rotate ?? 0);
  if (!Number.isFinite(raw)) return 0;
  return (((Math.round(raw / 90) * 90) % 360) + 360) % 360;
}

/** Parses `ffprobe -show_streams -show_format -of json`. Pure; throws when the JSON is not ffprobe's. */
export function vodSourceFromProbe(json: unknown): VodSource {
  const root = json as { streams?: unknown; format?: { duration?: string; format_name?: string } } | null;
  if (!root || typeof root !== "object") throw new Error("ffprobe output is not an object");
  const streams = (Array.isArray(root.streams) ? root.streams.filter((s) => typeof s === "object" && s !== null) : []) as RawStream[];
  // A cover image inside an audio file is a "video" stream of one frame: it is not a video.
  const v = streams.find((s) => s.codec_type === "video" && s.width && s.height && s.codec_name && !s.disposition?.attached_pic);
  const a = streams.find((s) => s.codec_type === "audio" && s.codec_name);
  const durations = [root.format?.duration, v?.duration, a?.duration].map((d) => Number(d)).filter((d) => Number.isFinite(d) && d > 0);
  const durationS = durations.length ? Math.max(...durations) : 0;
  let video: VodSource["video"];
  if (v) {
    const rotation = rotationOf(v);
    const turned = rotation % 180 === 90;
    // The nominal rate (r_frame_rate) rather than the average: a variable-rate recording is encoded at constant
    // rate (see args.ts), and its average (frames / duration) would be lower than the rate it was shot at.
    video = { width: turned ? v.height! : v.width!, height: turned ? v.width! : v.height!, fps: rate(v.r_frame_rate) ?? rate(v.avg_frame_rate), codec: v.codec_name!, rotation };
  }
  const audio = a ? { channels: a.channels, sampleRate: a.sample_rate ? Number(a.sample_rate) : undefined, codec: a.codec_name! } : undefined;
  return { durationS: Math.round(durationS * 1000) / 1000, video, audio, formatName: root.format?.format_name ?? "" };
}

export interface SourceLimits {
  maxDurationS: number;
  maxLongSide: number;
}

/** Why the node refuses this source (a clear sentence for media.failed), or undefined when it will process it. */
export function refusalOf(source: VodSource, limits: SourceLimits): string | undefined {
  if (!source.video && !source.audio) return "the file has no audio or video stream";
  // Still images probe as one-frame "video" without a duration.
  if (!(source.durationS > 0)) return "the file has no duration (not a video or audio recording)";
  if (source.durationS > limits.maxDurationS) return `the recording is ${Math.round(source.durationS)} s long; the limit is ${limits.maxDurationS} s`;
  if (source.video) {
    const long = Math.max(source.video.width, source.video.height);
    if (long > limits.maxLongSide) return `the picture is ${source.video.width}x${source.video.height}; the limit is ${limits.maxLongSide} pixels on the long side`;
  }
  return undefined;
}

/** Highest output frame rate; faster sources are encoded at this rate. */
export const MAX_VOD_FPS = 60;

/** The constant frame rate the ladder is encoded at: the source's nominal rate, at most 60, 30 when unknown. */
export function vodFrameRate(source: VodSource): number {
  const fps = source.video?.fps;
  return fps ? Math.min(MAX_VOD_FPS, fps) : 30;
}

/** The ladder's view of the source (upright dimensions, the output frame rate). */
export function ladderSource(source: VodSource): SourceInfo {
  const out: SourceInfo = {};
  if (source.video) out.video = { width: source.video.width, height: source.video.height, fps: vodFrameRate(source), codec: source.video.codec };
  if (source.audio) out.audio = { channels: source.audio.channels, sampleRate: source.audio.sampleRate, codec: source.audio.codec };
  return out;
}

/** The file cannot be read as media at all (ffprobe refused it): a fact about the upload, not worth a retry. */
export class UnreadableMediaError extends Error {
  override name = "UnreadableMediaError";
}

export function probeFile(file: string, opts: { ffprobePath?: string; timeoutMs?: number } = {}): Promise<VodSource> {
  const args = ["-v", "error", "-show_streams", "-show_format", "-of", "json", file];
  return new Promise((resolve, reject) => {
    execFile(opts.ffprobePath ?? "ffprobe", args, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 4 << 20 }, (error, stdout, stderr) => {
      if (error) {
        // A timeout or a missing binary is the node's problem; anything ffprobe says about the data is the file's.
        if ((error as NodeJS.ErrnoException).code === "ENOENT" || error.killed) return reject(new Error(`ffprobe could not run: ${error.message}`));
        const said = stderr.trim().split("\n").at(-1)?.replace(/^.*?: /, "") || "unreadable";
        return reject(new UnreadableMediaError(`the file is not a readable audio or video file (${said.slice(0, 200)})`));
      }
      try {
        resolve(vodSourceFromProbe(JSON.parse(stdout)));
      } catch (e) {
        reject(new UnreadableMediaError(`the file is not a readable audio or video file (${(e as Error).message})`));
      }
    });
  });
}
