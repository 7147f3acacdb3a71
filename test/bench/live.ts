// `npm run bench:live`: one JSON line about the live pipeline. A script, not a test (no pass/fail).
//
// Live part: a real media node (s3 driver against a local s3rver, real nats-server with authorization on, its
// outbox), the real NATS -> HTTP bridge process and the edge on Miniflare, a room client on the edge's
// WebSocket; FFmpeg publishing a 720p lavfi source at realtime over RTMP with the default ladder (720p/480p/360p
// for a 720p source), MEDIA_SEGMENT_S=BENCH_SEGMENT_S (default 1, the low-latency setting):
//   first_segment_s       publish accepted -> first segment and its rung playlist stored
//   playlist_visible_s    publish accepted -> master + every rung playlist stored (stream.live)
//   live_event_s          publisher process started -> stream.live applied at the room (the room client's frame)
//   classic_glass_to_glass_s  wall clock minus the EXT-X-PROGRAM-DATE-TIME of the point a player following the
//                         live edge with hls.js's default rule plays (3 target durations before the playlist's
//                         end), on the lowest rung's playlist polled from storage every 250 ms; median
//   segment_upload_p50_ms segment closed by FFmpeg (seen in its playlist) -> stored in S3, median
//   core_per_stream       CPU of the stream's FFmpeg (utime+stime from /proc) over wall time, steady state
// Overload part: 20 s of 1080p60 (a pre-encoded file with B-frames, sent at realtime with -c copy so the sender
// costs no CPU) into a node with the full default ladder (1080p/720p/480p/360p) and default settings:
//   overload_recorded_ratio  VOD duration / media duration sent
//   overload_rungs_kept      video rungs the master lists at the end (rungs shed when the ladder fell behind)
// Offline part: a 720p clip transcoded to the 3-rung 720p/480p/360p ladder
//   ladder_speed_x              one FFmpeg, one decode, cascaded scales (our design), media seconds / wall seconds
//   per_rung_processes_speed_x  one FFmpeg per rung, run concurrently (the naive design), same measure
//   ratio                       ladder_speed_x / per_rung_processes_speed_x
//   cpu_ratio                   per-rung CPU seconds / ladder CPU seconds: the same comparison, less sensitive to load
// The two designs run alternately, `repeats` times each; every offline figure is the median of those runs
// (wall times on this shared 2-core machine swing by 20% between runs, so a single run or the best run misleads).
//
//   node test/bench/live.ts [liveSeconds=16] [clipSeconds=20] [repeats=5] [overloadSeconds=20]
//
// Details (every run's wall and CPU seconds, the load average) go to stderr; the JSON line to stdout.

import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { busConfig } from "../../media-node/src/bus/index.ts";
import { loadConfig } from "../../media-node/src/config.ts";
import type { LiveSession } from "../../media-node/src/live/session.ts";
import { createLogger } from "../../media-node/src/log.ts";
import { startMediaNode } from "../../media-node/src/main.ts";
import { loadStorageConfig } from "../../media-node/src/storage/index.ts";
import { buildLiveArgs, toArgv } from "../../media-node/src/transcode/args.ts";
import { selectLadder } from "../../media-node/src/transcode/ladder.ts";
import { mintPublishToken } from "../../shared/tokens/publish-token.ts";
import { openClient } from "../helpers/ws-client.ts";
import { startNatsToHttpBridge } from "../helpers/bridges.ts";
import { TEST_SECRETS } from "../helpers/edge.ts";
import { publishTestSource, sentSeconds } from "../helpers/ffmpeg.ts";
import { parsePlaylist } from "../helpers/hls.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import { startNats } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";
import { run, spawnGroup } from "../helpers/process.ts";
import { startS3 } from "../helpers/s3.ts";
import { startMiniflareEdge } from "./lib/miniflare-edge.ts";
import { median, percentile, round } from "./lib/stats.ts";

const LIVE_S = Number(process.argv[2] ?? 16);
const CLIP_S = Number(process.argv[3] ?? 20);
const REPEATS = Number(process.argv[4] ?? 5);
const OVERLOAD_S = Number(process.argv[5] ?? 20);
const SEGMENT_S = process.env.BENCH_SEGMENT_S ?? "1";
const log = (line: string) => process.stderr.write(line + "\n");
/** BENCH_LOG_LEVEL=info shows the node's own account of each phase on stderr */
const NODE_LOG_LEVEL = (process.env.BENCH_LOG_LEVEL ?? "warn") as "warn" | "info" | "debug";
const SECRET = "bench-publish-secret-0123456789abcdef";
const CLK_TCK = 100; // Linux USER_HZ

async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime
}

async function live(work: string) {
  const [nats, s3, rtmpPort, httpPort] = await Promise.all([startNats(), startS3(), freePort(), freePort()]);
  const edge = await startMiniflareEdge({});
  const config = loadConfig({ MEDIA_RTMP_PORT: String(rtmpPort), MEDIA_HTTP_PORT: String(httpPort), MEDIA_OPS_PORT: "0", MEDIA_WORK_DIR: join(work, "live"), PUBLISH_TOKEN_SECRET: SECRET, MEDIA_RECONNECT_GRACE_S: "1", MEDIA_LOG_LEVEL: "warn", MEDIA_SEGMENT_S: SEGMENT_S });
  const node = await startMediaNode({
    config,
    storage: loadStorageConfig(s3.env),
    bus: busConfig({ ...nats.settings("media-node"), outboxDir: join(work, "outbox") }),
    log: createLogger({ level: NODE_LOG_LEVEL, sink: (line) => process.stderr.write(line + "\n") }),
  });
  const bridge = await startNatsToHttpBridge({ nats, edgeUrl: `${edge.url}/hooks/events` });
  const viewer = await openClient(`${edge.wsUrl}/parties/room/bench-room`, {
    headers: { authorization: `Bearer ${await mintHs256(TEST_SECRETS.JWT_SECRET, { sub: "bench-viewer", claims: { role: "viewer" } })}` },
  });
  const uploadMs: number[] = [];
  let publishedAt = 0;
  node.ingest.once("publish", () => (publishedAt = performance.now()));
  const sessionP = once(node.live, "session") as Promise<[LiveSession]>;
  const token = await mintPublishToken(SECRET, { sid: "bench", app: "live", scope: "publish", room: "bench-room", exp: Math.floor(Date.now() / 1000) + 3600 });
  const spawnedAt = performance.now();
  const publisher = publishTestSource(`rtmp://127.0.0.1:${rtmpPort}/live/bench?token=${token}`, { size: "1280x720", durationS: LIVE_S });
  const roomLive = viewer.next("event", (f) => f.event.type === "stream.live").then(() => performance.now());
  const [session] = await sessionP;
  let firstSegmentS = NaN;
  let runAt = NaN;
  session.once("run", () => (runAt = performance.now()));
  session.on("segment", (s) => {
    if (Number.isNaN(firstSegmentS)) firstSegmentS = (performance.now() - publishedAt) / 1000;
    uploadMs.push(s.uploadMs);
  });
  await once(session, "live");
  const playlistVisibleS = (performance.now() - publishedAt) / 1000;
  const liveEventS = ((await roomLive) - spawnedAt) / 1000;
  log(
    `time to stream.live: publisher spawned -> publish accepted ${((publishedAt - spawnedAt) / 1000).toFixed(2)} s -> ffmpeg run ${((runAt - spawnedAt) / 1000).toFixed(2)} s -> ` +
      `first segment ${(firstSegmentS + (publishedAt - spawnedAt) / 1000).toFixed(2)} s -> master stored ${(playlistVisibleS + (publishedAt - spawnedAt) / 1000).toFixed(2)} s -> room ${liveEventS.toFixed(2)} s`,
  );
  // CPU of the stream's FFmpeg in steady state, and glass-to-glass from the top rung's playlist meanwhile.
  const pid = session.ffmpegPid!;
  const cpu0 = await cpuSeconds(pid);
  const t0 = performance.now();
  const window = Math.max(3, LIVE_S - playlistVisibleS - 3) * 1000;
  const g2g: number[] = [];
  // the lowest rung: on a loaded machine the top ones may be shed (their playlists then end)
  const top = `${session.keyBase}/360p/index.m3u8`;
  while (performance.now() - t0 < window) {
    const res = await fetch(`${s3.env.S3_ENDPOINT}/${s3.env.S3_BUCKET}/${top}`).catch(() => undefined);
    const now = Date.now();
    if (res?.ok) {
      const m = parsePlaylist(await res.text());
      const segs = m.segments as { duration: number; programDateTime?: number }[];
      const last = segs.at(-1);
      if (last?.programDateTime !== undefined) {
        // hls.js's default live position: liveSyncDurationCount (3) target durations before the playlist's end
        const playhead = last.programDateTime + last.duration * 1000 - 3 * m.targetDuration * 1000;
        g2g.push((now - playhead) / 1000);
      }
    }
    await new Promise((r) => setTimeout(r, 250)); // a player's polling pace, not a wait for an event
  }
  const corePerStream = ((await cpuSeconds(pid)) - cpu0) / ((performance.now() - t0) / 1000);
  await once(session, "ended");
  await publisher.kill();
  await viewer.close();
  await bridge.stop();
  await node.stop();
  await edge.stop();
  await Promise.all([nats.stop(), s3.stop()]);
  log(`glass-to-glass samples (s): ${g2g.map((x) => x.toFixed(2)).join(" ")}`);
  return { firstSegmentS, playlistVisibleS, liveEventS, g2g: median(g2g), uploadP50: percentile(uploadMs, 50), corePerStream };
}

/** 1080p60 with B-frames on the full default ladder, sent at realtime from a file (so the sender costs no CPU). */
async function overload(work: string) {
  const clip = join(work, "overload.flv");
  const made = await run("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-nostdin",
    "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=60", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
    "-t", String(OVERLOAD_S), "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "120", "-pix_fmt", "yuv420p", "-b:v", "6000k",
    "-c:a", "aac", "-b:a", "128k", "-f", "flv", "-y", clip,
  ]);
  if (made.code !== 0) throw new Error(`could not make the 1080p60 clip: ${made.stderr}`);
  const [nats, rtmpPort, httpPort] = await Promise.all([startNats(), freePort(), freePort()]);
  const config = loadConfig({ MEDIA_RTMP_PORT: String(rtmpPort), MEDIA_HTTP_PORT: String(httpPort), MEDIA_OPS_PORT: "0", MEDIA_WORK_DIR: join(work, "overload"), PUBLISH_TOKEN_SECRET: SECRET, MEDIA_RECONNECT_GRACE_S: "1", MEDIA_LOG_LEVEL: "warn" });
  const storeDir = join(work, "overload-store");
  const node = await startMediaNode({
    config,
    storage: { store: { driver: "fs", dir: storeDir, publicBaseUrl: `http://127.0.0.1:${httpPort}/media` }, uploader: loadStorageConfig({}).uploader },
    bus: busConfig({ ...nats.settings("media-node"), outboxDir: join(work, "overload-outbox") }),
    log: createLogger({ level: NODE_LOG_LEVEL, sink: (line) => process.stderr.write(line + "\n") }),
  });
  const sessionP = once(node.live, "session") as Promise<[LiveSession]>;
  const token = await mintPublishToken(SECRET, { sid: "overload", app: "live", scope: "publish", exp: Math.floor(Date.now() / 1000) + 3600 });
  const publisher = spawnGroup("ffmpeg", ["-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", clip, "-c", "copy", "-progress", "pipe:1", "-f", "flv", `rtmp://127.0.0.1:${rtmpPort}/live/overload?token=${token}`]);
  const [session] = await sessionP;
  const sheds: string[] = [];
  session.on("degraded", (d) => sheds.push(`${d.shed.join(",")} at speed ${d.speed.toFixed(2)}`));
  const [ended] = (await once(session, "ended")) as [{ durationS: number; vodUrl?: string }];
  await publisher.exited;
  const sent = sentSeconds(publisher);
  const vodMaster = parsePlaylist(await readFile(join(storeDir, session.vodKey), "utf8"));
  const liveMaster = parsePlaylist(await readFile(join(storeDir, session.masterKey), "utf8"));
  log(`overload: sent ${sent.toFixed(2)} s, recorded ${ended.durationS} s, sheds: ${sheds.join("; ") || "none"}, VOD master lists ${vodMaster.playlists.map((p: { uri: string }) => p.uri).join(" ")}`);
  await node.stop();
  await nats.stop();
  return { recordedRatio: ended.durationS / sent, rungsKept: liveMaster.playlists.length };
}

/** Runs one FFmpeg plan to completion; wall seconds, and CPU seconds when /usr/bin/time is there. */
async function timed(argv: string[]): Promise<{ wall: number; cpu: number }> {
  const start = performance.now();
  const haveTime = existsSync("/usr/bin/time");
  const r = haveTime ? await run("/usr/bin/time", ["-f", "CPU %U %S", "ffmpeg", ...argv]) : await run("ffmpeg", argv);
  const wall = (performance.now() - start) / 1000;
  if (r.code !== 0) throw new Error(`ffmpeg failed: ${r.stderr.slice(-1000)}`);
  const m = r.stderr.match(/CPU ([\d.]+) ([\d.]+)\s*$/);
  return { wall, cpu: m ? Number(m[1]) + Number(m[2]) : NaN };
}

async function offline(work: string) {
  const clip = join(work, "clip.mp4");
  const made = await run("ffmpeg", ["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", String(CLIP_S), "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-g", "60", "-c:a", "aac", "-y", clip]);
  if (made.code !== 0) throw new Error(`could not make the clip: ${made.stderr}`);
  const source = { video: { width: 1280, height: 720, fps: 30 }, audio: { channels: 2 } };
  const preset = loadConfig({ PUBLISH_TOKEN_SECRET: SECRET }).x264Preset;
  // The same argument builder the live node uses, on a file instead of the RTMP pull.
  const argv = (rungs: ("720p" | "480p" | "360p")[], out: string) =>
    toArgv(buildLiveArgs({ input: clip, outDir: out, ladder: selectLadder(source, { rungs, passthrough: false }), segmentS: 2, preset, listSize: 0 }));
  // Other work on this machine skews single runs: alternate the two designs and take each one's median.
  const ladder: { wall: number; cpu: number }[] = [];
  const perRung: { wall: number; cpu: number }[] = [];
  for (let i = 0; i < REPEATS; i++) {
    ladder.push(await timed(argv(["720p", "480p", "360p"], join(work, `ladder-${i}`))));
    const start = performance.now();
    const parts = await Promise.all((["720p", "480p", "360p"] as const).map((r) => timed(argv([r], join(work, `rung-${i}-${r}`)))));
    perRung.push({ wall: (performance.now() - start) / 1000, cpu: parts.reduce((t, p) => t + p.cpu, 0) });
  }
  const median = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  };
  const wallOf = (xs: { wall: number }[]) => median(xs.map((x) => x.wall));
  const cpu = (xs: { cpu: number }[]) => median(xs.map((x) => x.cpu));
  process.stderr.write(
    `offline ${CLIP_S}s 720p clip, ${REPEATS} alternating runs: ladder wall ${ladder.map((x) => x.wall.toFixed(1)).join("/")} s cpu ${ladder.map((x) => x.cpu.toFixed(1)).join("/")} s; ` +
      `per-rung wall ${perRung.map((x) => x.wall.toFixed(1)).join("/")} s cpu ${perRung.map((x) => x.cpu.toFixed(1)).join("/")} s; ` +
      `cpu ratio (per-rung cpu / ladder cpu) ${(cpu(perRung) / cpu(ladder)).toFixed(2)}; load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}\n`,
  );
  return { ladder: CLIP_S / wallOf(ladder), perRung: CLIP_S / wallOf(perRung), cpuRatio: cpu(perRung) / cpu(ladder) };
}

const work = await mkdtemp(join(tmpdir(), "pulsecast-bench-live-"));
try {
  const l = await live(work);
  const ov = await overload(work);
  const o = await offline(work);
  console.log(
    JSON.stringify({
      first_segment_s: round(l.firstSegmentS),
      playlist_visible_s: round(l.playlistVisibleS),
      live_event_s: round(l.liveEventS),
      classic_glass_to_glass_s: round(l.g2g),
      classic_glass_to_glass_method: "wall clock - PROGRAM-DATE-TIME at playlist end - 3 x TARGETDURATION (hls.js default live position), lowest rung (never shed) polled every 250 ms, median",
      segment_s: Number(SEGMENT_S),
      overload_recorded_ratio: round(ov.recordedRatio),
      overload_rungs_kept: ov.rungsKept,
      segment_upload_p50_ms: round(l.uploadP50),
      ladder_speed_x: round(o.ladder),
      core_per_stream: round(l.corePerStream),
      per_rung_processes_speed_x: round(o.perRung),
      ratio: round(o.ladder / o.perRung),
      cpu_ratio: round(o.cpuRatio),
    }),
  );
} finally {
  await rm(work, { recursive: true, force: true });
}
process.exit(0);
