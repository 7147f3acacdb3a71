// Real FFmpeg for tests: publish a lavfi test source over RTMP (what OBS would send), and ffprobe helpers that
// look inside fMP4 HLS segments (keyframes, durations).

import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type GroupProcess, run, spawnGroup } from "./process.ts";

export interface TestSourceOptions {
  /** e.g. 640x360; 0 disables video */
  size?: string;
  rate?: number;
  /** false: video-only */
  audio?: boolean;
  /** false: audio-only */
  video?: boolean;
  /** stop after this many seconds (default: run until stopped) */
  durationS?: number;
  /** keyframe interval of the broadcaster, frames (OBS default is 2 s) */
  gop?: number;
  /** report how much was sent (`-progress` on stdout), read with sentSeconds() */
  progress?: boolean;
}

/**
 * Publishes testsrc2 (+ a sine tone) at realtime (-re) to `url` with libx264/aac in FLV, like a broadcaster.
 * Stop it with `.stop()` (SIGTERM: a clean RTMP disconnect) or `.kill()` (SIGKILL: a dropped connection).
 */
export function publishTestSource(url: string, opts: TestSourceOptions = {}): GroupProcess {
  const rate = opts.rate ?? 30;
  const args = ["-hide_banner", "-loglevel", "error", "-nostdin", "-re"];
  const video = opts.video !== false;
  const audio = opts.audio !== false;
  if (video) args.push("-f", "lavfi", "-i", `testsrc2=size=${opts.size ?? "640x360"}:rate=${rate}`);
  if (audio) args.push("-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000");
  if (opts.durationS) args.push("-t", String(opts.durationS));
  if (opts.progress) args.push("-progress", "pipe:1");
  if (video) args.push("-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", String(opts.gop ?? rate * 2), "-pix_fmt", "yuv420p");
  if (audio) args.push("-c:a", "aac", "-b:a", "64k");
  args.push("-f", "flv", url);
  return spawnGroup("ffmpeg", args);
}

/**
 * Seconds of media a publisher started with `progress: true` has sent so far (its last `-progress` report; the
 * final one is written when it exits), so a test that stops a broadcast itself knows how long it was.
 */
export function sentSeconds(publisher: GroupProcess): number {
  const all = [...publisher.output().matchAll(/^out_time_us=(\d+)$/gm)];
  const last = all.at(-1);
  if (!last) throw new Error("the publisher reported no progress (started without `progress: true`?)");
  return Number(last[1]) / 1e6;
}

export interface ProbedFrame {
  key: boolean;
  pictType: string;
  ptsS: number;
}

export interface ProbedSegment {
  video: ProbedFrame[];
  audioPackets: number;
  /** container duration as ffprobe sees it */
  durationS: number;
}

/**
 * ffprobe one fMP4 segment: it is only decodable after its init segment, so the two are concatenated first.
 */
export async function probeFmp4Segment(initFile: string, segmentFile: string): Promise<ProbedSegment> {
  const dir = await mkdtemp(join(tmpdir(), "pulsecast-probe-"));
  try {
    const joined = join(dir, "joined.mp4");
    await writeFile(joined, Buffer.concat([await readFile(initFile), await readFile(segmentFile)]));
    const { code, stdout, stderr } = await run("ffprobe", ["-v", "error", "-show_entries", "frame=media_type,key_frame,pict_type,pts_time,best_effort_timestamp_time:format=duration", "-of", "json", joined]);
    if (code !== 0) throw new Error(`ffprobe failed on ${segmentFile}: ${stderr}`);
    const json = JSON.parse(stdout) as { frames?: Record<string, string | number>[]; format?: { duration?: string } };
    const frames = json.frames ?? [];
    return {
      video: frames
        .filter((f) => f.media_type === "video")
        .map((f) => ({ key: Number(f.key_frame) === 1, pictType: String(f.pict_type), ptsS: Number(f.pts_time ?? f.best_effort_timestamp_time) })),
      audioPackets: frames.filter((f) => f.media_type === "audio").length,
      durationS: Number(json.format?.duration ?? NaN),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Streams in a media file (or URL) as ffprobe reports them. */
export async function probeStreams(input: string): Promise<{ codec_type: string; codec_name: string; width?: number; height?: number }[]> {
  const { code, stdout, stderr } = await run("ffprobe", ["-v", "error", "-show_streams", "-of", "json", input]);
  if (code !== 0) throw new Error(`ffprobe failed on ${input}: ${stderr}`);
  return (JSON.parse(stdout) as { streams: { codec_type: string; codec_name: string; width?: number; height?: number }[] }).streams;
}
