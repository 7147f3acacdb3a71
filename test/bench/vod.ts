// `npm run bench:vod`: one JSON line about uploads. A script, not a test (no pass/fail).
//
// A 60 s 1280x720 30 fps clip with moving, noisy content (testsrc2 with temporal film grain, and a tone) is
// uploaded with tus through the edge (wrangler dev, R2 simulated) in 50 MiB chunks and processed by one media
// node (default VOD settings: 720p/480p/360p, 4 s fMP4 segments, storyboard and poster), every part real.
//   upload_mb_per_s              file MB / seconds from the creation request to the last PATCH answered
//   time_to_playable_s           last byte stored -> media.playable seen on NATS (every rendition has a segment)
//   time_to_ready_s              last byte stored -> media.ready seen on NATS (everything stored)
//   ready_speed_x                clip seconds / time_to_ready_s
//   baseline_single_rung_speed_x one plain FFmpeg encode of the same clip to the top rung (720p, the same libx264
//                                preset, options and bitrate as the node's, audio included), media seconds / wall
//                                seconds, in the same run
//   ready_cpu_s / baseline_cpu_s CPU seconds the media node (with its FFmpeg and ffprobe) used from the last byte to
//                                media.ready, and the baseline's FFmpeg: figures the machine's load barely moves
//                                (on two free cores the wall time cannot be less than half of them)
//   load_avg_1m                  the machine's load when the upload finished
//   x264                         those libx264 settings (VOD_X264_PRESET and VOD_X264_PARAMS, from the environment
//                                or their defaults)
//
//   node test/bench/vod.ts [clipSeconds=60]
//
// Details go to stderr; the JSON line to stdout.

import { readFile, stat } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { readSettings } from "../../shared/settings/settings.ts";
import { vodSettings } from "../../media-node/src/settings/vod.ts";
import { run } from "../helpers/process.ts";
import { noisyVideo } from "../vod/sources.ts";
import { startVodStack } from "../vod/stack.ts";

const clipS = Number(process.argv[2] ?? 60);
/**
 * CPU seconds so far (Linux /proc, clock ticks of 1/100 s) of process `pid` and its children it has waited for,
 * or with `childrenOnly` of those children alone.
 */
function cpuSeconds(pid: number | "self", childrenOnly = false): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  // After "pid (comm) " the state is field 3 of the man page, so utime, stime, cutime, cstime (14-17) are at 11-14.
  return (childrenOnly ? [13, 14] : [11, 12, 13, 14]).reduce((t, i) => t + Number(fields[i]), 0) / 100;
}
// The node reads the same environment (the stack passes it on): the baseline encodes as the node does.
const { vodX264Preset: preset, vodX264Params: params } = readSettings({ vodX264Preset: vodSettings.vodX264Preset, vodX264Params: vodSettings.vodX264Params }, process.env);
const x264 = [...["-preset", preset], ...(params !== "none" ? ["-x264-params", params] : [])];
const MiB = 1024 * 1024;
const log = (m: string) => process.stderr.write(`[bench:vod] ${m}\n`);

const stack = await startVodStack();
try {
  const clip = join(stack.root, "clip.mp4");
  const made = await run("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", ...noisyVideo("1280x720", 30, clipS), "-f", "lavfi", "-i", `sine=frequency=330:sample_rate=48000:duration=${clipS}`, "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-shortest", clip]);
  if (made.code !== 0) throw new Error(`clip not made: ${made.stderr}`);
  const bytes = new Uint8Array(await readFile(clip));
  log(`clip ${clipS} s, ${(bytes.byteLength / MiB).toFixed(1)} MiB; load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);

  const tus = await stack.tus("bench", 50 * MiB);
  const t0 = performance.now();
  const { url } = await tus.upload(bytes, "bench", { filename: "clip.mp4", filetype: "video/mp4", title: "bench" });
  const lastByte = performance.now();
  const nodeCpu0 = cpuSeconds(stack.node.child.pid!);
  const load = loadavg()[0]!;
  const id = new URL(url).pathname.split("/").at(-1)!;
  const uploadS = (lastByte - t0) / 1000;
  log(`uploaded in ${uploadS.toFixed(2)} s`);

  const playable = await stack.waitForEvent("media.playable", id, 300_000);
  const ready = await stack.waitForEvent("media.ready", id, 600_000);
  const readyCpuS = cpuSeconds(stack.node.child.pid!) - nodeCpu0;
  const timeToPlayable = (playable.at - lastByte) / 1000;
  const timeToReady = (ready.at - lastByte) / 1000;
  log(`playable after ${timeToPlayable.toFixed(2)} s, ready after ${timeToReady.toFixed(2)} s`);
  // The node's own breakdown (ms from the job's start): source fetched, probed, playable, everything stored.
  for (const line of stack.node.output().split("\n")) if (/"msg":"vod (playable|stored)"/.test(line)) log(`node: ${line}`);

  // Baseline: the same clip, one rung (720p), one plain FFmpeg.
  const b0 = performance.now();
  const baseCpu0 = cpuSeconds("self", true);
  const base = await run("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", "-i", clip, "-c:v", "libx264", ...x264, "-b:v", "3000k", "-maxrate", "3300k", "-bufsize", "4500k", "-c:a", "aac", "-b:a", "128k", join(stack.root, "baseline.mp4")]);
  if (base.code !== 0) throw new Error(`baseline failed: ${base.stderr}`);
  const baselineS = (performance.now() - b0) / 1000;
  const baselineCpuS = cpuSeconds("self", true) - baseCpu0;
  log(`baseline single rung: ${baselineS.toFixed(2)} s; load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);

  const r2 = (n: number) => Math.round(n * 100) / 100;
  console.log(
    JSON.stringify({
      clip_s: clipS,
      upload_mb_per_s: r2((await stat(clip)).size / 1e6 / uploadS),
      time_to_playable_s: r2(timeToPlayable),
      time_to_ready_s: r2(timeToReady),
      ready_speed_x: r2(clipS / timeToReady),
      baseline_single_rung_speed_x: r2(clipS / baselineS),
      ready_cpu_s: r2(readyCpuS),
      baseline_cpu_s: r2(baselineCpuS),
      load_avg_1m: r2(load),
      x264: params !== "none" ? `${preset} ${params}` : preset,
    }),
  );
} finally {
  await stack.stop();
}
