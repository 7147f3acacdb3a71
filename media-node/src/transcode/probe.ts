// What the source carries, for ladder selection. Preferred: the publisher's RTMP metadata (free and instant);
// fallback: ffprobe on the RTMP pull (costs an extra play and ~1 s), for broadcasters that send no metadata.

import { execFile } from "node:child_process";
import type { SourceHints } from "../ingest/rtmp-server.ts";
import type { SourceInfo } from "./ladder.ts";

/** FLV codec ids (video: 7 = H.264, 12 = HEVC; audio: 10 = AAC). */
const FLV_VIDEO: Record<number, string> = { 7: "h264", 12: "hevc" };
const FLV_AUDIO: Record<number, string> = { 10: "aac", 2: "mp3" };

export function sourceFromHints(hints: SourceHints): SourceInfo {
  const out: SourceInfo = {};
  if (hints.video) out.video = { width: hints.video.width, height: hints.video.height, fps: hints.video.fps, codec: FLV_VIDEO[hints.video.codecId ?? -1] };
  if (hints.audio) out.audio = { channels: hints.audio.channels, sampleRate: hints.audio.sampleRate, codec: FLV_AUDIO[hints.audio.codecId ?? -1] };
  return out;
}

interface ProbeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  channels?: number;
  sample_rate?: string;
}

function rate(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const [n, d] = value.split("/").map(Number);
  if (!n || !d) return undefined;
  return Math.round((n / d) * 1000) / 1000;
}

/** Parses `ffprobe -show_streams -of json` output. Pure. */
export function sourceFromProbe(json: unknown): SourceInfo {
  const raw = (json as { streams?: unknown } | null)?.streams;
  const streams = (Array.isArray(raw) ? raw.filter((s) => typeof s === "object" && s !== null) : []) as ProbeStream[];
  const out: SourceInfo = {};
  const v = streams.find((s) => s.codec_type === "video" && s.width && s.height);
  const a = streams.find((s) => s.codec_type === "audio");
  if (v) out.video = { width: v.width!, height: v.height!, fps: rate(v.avg_frame_rate) ?? rate(v.r_frame_rate), codec: v.codec_name };
  if (a) out.audio = { channels: a.channels, sampleRate: a.sample_rate ? Number(a.sample_rate) : undefined, codec: a.codec_name };
  return out;
}

export function probeSource(input: string, opts: { ffprobePath?: string; timeoutMs?: number; rwTimeoutS?: number } = {}): Promise<SourceInfo> {
  const args = ["-v", "error", "-show_streams", "-of", "json"];
  if (opts.rwTimeoutS && input.startsWith("rtmp")) args.push("-rw_timeout", String(Math.round(opts.rwTimeoutS * 1e6)));
  args.push(input);
  return new Promise((resolve, reject) => {
    execFile(opts.ffprobePath ?? "ffprobe", args, { timeout: opts.timeoutMs ?? 10_000, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`ffprobe failed on ${input.replace(/\?.*/, "")}: ${stderr.trim().slice(-300) || error.message}`));
      try {
        resolve(sourceFromProbe(JSON.parse(stdout)));
      } catch (e) {
        reject(new Error(`ffprobe output is not JSON: ${(e as Error).message}`));
      }
    });
  });
}
