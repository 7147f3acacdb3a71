// Upload sources for VOD tests, generated with real FFmpeg: what phones and editors produce (landscape, portrait
// with rotation metadata, odd sizes, variable frame rate, audio only) and what they should not (a cut-off file,
// a text file named .mp4). Moving, noisy content unless said otherwise.

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { truncate } from "node:fs/promises";
import { stat } from "node:fs/promises";
import { run } from "../helpers/process.ts";

export type SourceKind = "fade-in" | "landscape" | "portrait-rotated" | "audio-only" | "odd-size" | "vfr" | "truncated" | "text";

async function ffmpeg(args: string[]): Promise<void> {
  const r = await run("ffmpeg", ["-hide_banner", "-loglevel", "error", "-nostdin", "-y", ...args]);
  if (r.code !== 0) throw new Error(`ffmpeg failed making a test source: ${r.stderr}`);
}

/** Moving test pattern with film-grain noise, so the encoder has real work (not a flat pattern). */
export function noisyVideo(size: string, rate: number, seconds: number): string[] {
  return ["-f", "lavfi", "-i", `testsrc2=size=${size}:rate=${rate}:duration=${seconds},noise=alls=12:allf=t+u`];
}

const tone = (seconds: number) => ["-f", "lavfi", "-i", `sine=frequency=330:sample_rate=48000:duration=${seconds}`];
const h264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"];
const aac = ["-c:a", "aac", "-b:a", "96k"];

/** Writes the source into `dir` and returns its path. */
export async function makeSource(kind: SourceKind, dir: string, seconds = 5): Promise<string> {
  const file = join(dir, `${kind}.mp4`);
  switch (kind) {
    case "fade-in":
      // Starts black and fades in over 3 s, as many edited videos do: the first frame is no poster.
      await ffmpeg([...noisyVideo("640x360", 30, seconds), ...tone(seconds), "-vf", "fade=in:st=0:d=3", ...h264, ...aac, "-shortest", file]);
      break;
    case "landscape":
      await ffmpeg([...noisyVideo("854x480", 30, seconds), ...tone(seconds), ...h264, ...aac, "-shortest", file]);
      break;
    case "portrait-rotated": {
      // What a phone held upright writes: landscape frames plus a 90 degree rotation in the track's display
      // matrix (FFmpeg 5.1 writes the matrix from the `rotate` tag when remuxing).
      const plain = join(dir, `${kind}-plain.mp4`);
      await ffmpeg([...noisyVideo("640x360", 30, seconds), ...tone(seconds), ...h264, ...aac, "-shortest", plain]);
      await ffmpeg(["-i", plain, "-c", "copy", "-metadata:s:v:0", "rotate=90", file]);
      break;
    }
    case "audio-only":
      await ffmpeg([...tone(seconds), ...aac, file]);
      break;
    case "odd-size":
      // 4:4:4 allows odd dimensions in H.264.
      await ffmpeg([...noisyVideo("640x360", 25, seconds), "-vf", "scale=641:359", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p", file]);
      break;
    case "vfr":
      // Drops 4 of every 10 frames and keeps the timestamps: irregular frame intervals, as screen recorders write.
      await ffmpeg([...noisyVideo("640x360", 30, seconds), ...tone(seconds), "-vf", "select='lt(mod(n\\,10)\\,6)'", "-fps_mode", "vfr", ...h264, ...aac, "-shortest", file]);
      break;
    case "truncated": {
      // The index (moov) is written at the end by default: cutting the file in half loses it, as an upload cut
      // short by a client bug would.
      await ffmpeg([...noisyVideo("640x360", 30, seconds), ...tone(seconds), ...h264, ...aac, "-shortest", file]);
      await truncate(file, Math.floor((await stat(file)).size / 2));
      break;
    }
    case "text":
      await writeFile(file, "This is not a video. It only has a video's name.\n".repeat(200));
      break;
  }
  return file;
}
