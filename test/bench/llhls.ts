// `npm run bench:llhls`: low-latency HLS measured in a real browser. One JSON line on stdout; details on stderr.
//
// The stack, started once: nats-server, a media node in this process (fs storage, stream keys and LL-HLS
// announcements against the edge), the edge under wrangler dev (the pages, /play, the LL objects), the
// NATS->HTTP bridge (stream.live reaches the room, which hands the watch page its URL), Chromium.
// Each run: a stream created through the Streams API with `latency: "low"`, FFmpeg publishing a lavfi test
// source at real time over RTMP with its stream key for LLHLS_BENCH_DURATION_S seconds, and two pages:
//   - the watch page (/watch/<id>), which plays the stream's LL-HLS master with hls.js in low-latency mode;
//   - a classic page on the same origin playing the same broadcast's classic playlists (`live.m3u8`, the same
//     encode's segments) with hls.js configured as the watch page configures it for classic streams.
// Both sample `Date.now() - hls.playingDate` every 250 ms (the program date time is the moment the frame reached
// the media node, so this is ingest to display, against the page's clock; the first 5 s of playback are left
// out). A Node client follows the lowest rendition's LL playlist with blocking requests as hls.js does.
//
//   glass_to_glass_p50_s / _p95_s   LL page: page clock - program date time of the frame on screen
//   stalls                          hls.js BUFFER_STALLED_ERRORs on the LL page, summed over all runs
//   part_lag_p95_ms                 last frame of a part in at the node -> the part listed in a playlist the
//                                   Node client got back from the edge (blocking request), lowest rendition
//   first_part_after_publish_s      publish accepted -> the edge took the first part (every rendition listed)
//   classic_glass_to_glass_p50_s    the classic page, same measure, same runs
//   core_per_stream                 CPU of the stream's FFmpeg (utime+stime) / wall time, steady state
//   classic_core_per_stream         the same for a normal-latency stream (FFmpeg's HLS muxer, the classic
//                                   encoder settings), same source and ladder, LLHLS_BENCH_CLASSIC_S seconds
// Every figure is the median over the runs (each run's own p50/p95 first), except stalls (a sum).
//
// Settings (environment): LLHLS_BENCH_DURATION_S (default 300), LLHLS_BENCH_RUNS (default 3),
// LLHLS_BENCH_CLASSIC_S (default 60), LLHLS_BENCH_SIZE (source, default 640x360), LLHLS_BENCH_LADDER
// (default 360p,240p), LLHLS_BENCH_PRESET (x264 preset, default veryfast).

import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { busConfig } from "../../media-node/src/bus/index.ts";
import { loadConfig } from "../../media-node/src/config.ts";
import type { LiveSession } from "../../media-node/src/live/session.ts";
import { createLogger } from "../../media-node/src/log.ts";
import { startMediaNode } from "../../media-node/src/main.ts";
import { DEFAULT_UPLOADER_CONFIG } from "../../media-node/src/storage/index.ts";
import { startNatsToHttpBridge } from "../helpers/bridges.ts";
import { launchChromium, newContext, tokenFragment } from "../helpers/browser.ts";
import { ROOT, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { publishTestSource } from "../helpers/ffmpeg.ts";
import { parsePlaylist } from "../helpers/hls.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import { startNats } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";
import { median, percentile, round } from "./lib/stats.ts";
import { buildWeb } from "../../web/build.ts";

const DURATION_S = Number(process.env.LLHLS_BENCH_DURATION_S ?? 300);
const RUNS = Number(process.env.LLHLS_BENCH_RUNS ?? 3);
const CLASSIC_S = Number(process.env.LLHLS_BENCH_CLASSIC_S ?? 60);
// 360p with a 240p rung by default: the publisher, the node, the edge and Chromium share two cores.
const SIZE = process.env.LLHLS_BENCH_SIZE ?? "640x360";
const LADDER = process.env.LLHLS_BENCH_LADDER ?? "360p,240p";
const PRESET = process.env.LLHLS_BENCH_PRESET ?? "veryfast";
const WARMUP_S = 5;
const FPS = 30;
const CLK_TCK = 100; // Linux USER_HZ
const log = (line: string) => process.stderr.write(line + "\n");

async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** CPU of the session's FFmpeg over `windowMs` of wall time, as cores (restarted runs excluded: pid must stay). */
async function coresOver(session: LiveSession, windowMs: number, stop: () => boolean): Promise<number> {
  const pid = session.ffmpegPid;
  if (!pid) return Number.NaN;
  const cpu0 = await cpuSeconds(pid);
  const t0 = performance.now();
  while (performance.now() - t0 < windowMs && !stop()) await new Promise((r) => setTimeout(r, 500));
  if (session.ffmpegPid !== pid) return Number.NaN;
  return ((await cpuSeconds(pid)) - cpu0) / ((performance.now() - t0) / 1000);
}

// The watch page is served from the built pages.
await buildWeb();
const work = await mkdtemp(join(tmpdir(), "pulsecast-bench-llhls-"));
const nats = await startNats();
const [rtmpPort, httpPort, edgePort] = [await freePort(), await freePort(), await freePort()];
const edgeUrl = `http://127.0.0.1:${edgePort}`;
const config = loadConfig({
  MEDIA_RTMP_PORT: String(rtmpPort),
  MEDIA_HTTP_PORT: String(httpPort),
  MEDIA_OPS_PORT: "0",
  MEDIA_WORK_DIR: join(work, "work"),
  PUBLISH_TOKEN_SECRET: TEST_SECRETS.PUBLISH_TOKEN_SECRET,
  MEDIA_RECONNECT_GRACE_S: "1",
  MEDIA_LADDER: LADDER,
  MEDIA_X264_PRESET: PRESET,
  MEDIA_LOG_LEVEL: "warn",
  MEDIA_SHED_BELOW_SPEED: "0",
  MEDIA_MAX_LIVE_STREAMS: "4",
});
const node = await startMediaNode({
  config,
  storage: { store: { driver: "fs", dir: join(work, "store"), publicBaseUrl: `http://127.0.0.1:${httpPort}/media` }, uploader: DEFAULT_UPLOADER_CONFIG },
  bus: busConfig({ ...nats.settings("media-node"), outboxDir: join(work, "outbox") }),
  log: createLogger({ level: (process.env.BENCH_LOG_LEVEL ?? "warn") as "warn", sink: (line) => process.stderr.write(line + "\n") }),
  streamKeys: { edgeUrl, internalToken: TEST_SECRETS.INTERNAL_API_TOKEN, intervalMs: 5000, timeoutMs: 1500 },
  llhls: { llhlsEdgeUrl: edgeUrl, announceSecrets: [TEST_SECRETS.EDGE_INGRESS_SECRET], partMs: 333, announceTimeoutMs: 2000 },
});
const edge = await startEdge({ PLAYBACK_ORIGIN_URL: `${node.httpUrl}/media`, PLAYBACK_BASE_URL: edgeUrl }, { port: edgePort });
const bridge = await startNatsToHttpBridge({ nats, edgeUrl: `${edge.url}/hooks/events` });
const browser: Browser = await launchChromium();
const owner = await mintHs256(TEST_SECRETS.JWT_SECRET, { sub: "bench-owner", claims: { role: "broadcaster" } });
const HLS_JS = resolve(ROOT, "node_modules/hls.js/dist/hls.min.js");

async function createStream(latency: "low" | "normal"): Promise<{ id: string; key: string }> {
  const res = await fetch(`${edge.url}/streams`, { method: "POST", headers: { authorization: `Bearer ${owner}`, "content-type": "application/json" }, body: JSON.stringify({ latency, title: `bench ${latency}` }) });
  if (res.status !== 201) throw new Error(`POST /streams answered ${res.status}: ${await res.text()}`);
  const s = (await res.json()) as { id: string; rtmp: { streamKey: string } };
  return { id: s.id, key: s.rtmp.streamKey };
}

/** Samples `behind()` (seconds) every 250 ms from `from` (ms) until `to`; returns the samples. */
async function sample(page: Page, behind: () => Promise<number | null>, from: number, to: number): Promise<number[]> {
  const out: number[] = [];
  while (Date.now() < to) {
    const x = await behind().catch(() => null);
    if (x !== null && Date.now() >= from) out.push(x);
    await page.waitForTimeout(250);
  }
  return out;
}

/** Follows the lowest rendition's LL playlist like hls.js (blocking requests) and records each part's listing lag. */
async function followParts(url: string, until: () => boolean): Promise<number[]> {
  const lags: number[] = [];
  const seen = new Set<string>();
  let query = "";
  while (!until()) {
    const res = await fetch(`${url}${query}`).catch(() => undefined);
    const at = Date.now();
    if (!res || res.status !== 200) {
      await res?.body?.cancel();
      query = "";
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    const m = parsePlaylist(await res.text());
    if (m.endList) break;
    const segs = [...m.segments, ...(m.preloadSegment ? [m.preloadSegment] : [])] as { programDateTime?: number; dateTimeObject?: Date; parts?: { uri: string; duration: number }[] }[];
    let pdt: number | undefined;
    for (const s of segs) {
      pdt = s.programDateTime ?? s.dateTimeObject?.getTime() ?? pdt;
      let offset = 0;
      for (const p of s.parts ?? []) {
        offset += p.duration;
        if (pdt !== undefined && !seen.has(p.uri)) {
          seen.add(p.uri);
          // Parts already listed the first time we look are not timed (we did not wait for them).
          if (query !== "") lags.push(at - (pdt + (offset - 1 / FPS) * 1000));
        }
      }
    }
    const pre = m.preloadSegment?.parts ?? [];
    const msn = m.mediaSequence + m.segments.length;
    query = `?_HLS_msn=${msn}&_HLS_part=${pre.length}`;
  }
  return lags;
}

interface RunResult {
  g2gP50: number;
  g2gP95: number;
  classicP50: number;
  stalls: number;
  partLagP95: number;
  announceLagP95: number;
  firstPartS: number;
  cores: number;
}

async function llRun(i: number): Promise<RunResult> {
  const { id, key } = await createStream("low");
  const ctx = await newContext(browser);
  const watch = await ctx.newPage();
  watch.on("console", (m) => m.type() === "error" && log(`[watch page] ${m.text()}`));
  await watch.goto(`${edge.url}/watch/${id}${await tokenFragment("bench-viewer", { role: "viewer" })}`);
  const sessionP = once(node.live, "session") as Promise<[LiveSession]>;
  let publishedAt = 0;
  node.ingest.once("publish", () => (publishedAt = Date.now()));
  const publisher = publishTestSource(`rtmp://127.0.0.1:${rtmpPort}/live/${key}`, { size: SIZE, durationS: DURATION_S + 10 });
  const [session] = await sessionP;
  const announceLags: number[] = [];
  let firstPartAt = 0;
  const perRendition = new Map<string, number>();
  session.on("part", (p) => {
    // from the publish being accepted (the ingest's event), as the figure is defined
    if (!perRendition.has(p.variant)) perRendition.set(p.variant, Date.now() - publishedAt);
    if (perRendition.size === (LADDER.split(",").length) && !firstPartAt) firstPartAt = Math.max(...perRendition.values());
    announceLags.push(p.lagMs);
  });
  const live = (await once(session, "live")) as [{ lowLatency: boolean }];
  if (!live[0].lowLatency) throw new Error("the stream went live without low latency (is LLHLS_EDGE_URL reaching the edge?)");
  const end = Date.now() + DURATION_S * 1000;
  // LL page: the watch page's own player.
  type Handle = { pulsecast: { player: { diagnostics(): { behindS: number | null; stalls: number; lowLatency: boolean; edgeLatencyS: number | null } } } };
  const llBehind = () => watch.evaluate(() => (window as unknown as Handle).pulsecast.player.diagnostics().behindS);
  // Classic page: same origin, hls.js as the watch page sets it up for a classic stream, once the classic master
  // is stored (a segment after the LL one: hls.js gives up on a master that answers 404).
  const classicUrl = `${edge.url}/play/${id}/live.m3u8`;
  while (Date.now() < end) {
    const res = await fetch(classicUrl).catch(() => undefined);
    await res?.body?.cancel();
    if (res?.status === 200) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const classic = await ctx.newPage();
  classic.on("console", (m) => m.type() === "error" && log(`[classic page] ${m.text()}`));
  classic.on("pageerror", (e) => log(`[classic page] ${e.message}`));
  await classic.goto(`${edge.url}/healthz`);
  await classic.addScriptTag({ path: HLS_JS });
  await classic.evaluate((src) => {
    const video = document.createElement("video");
    video.muted = true;
    video.autoplay = true;
    document.body.append(video);
    const w = window as unknown as { Hls: new (c: object) => { loadSource(u: string): void; attachMedia(v: HTMLVideoElement): void; playingDate: Date | null }; hls: unknown };
    const hls = new w.Hls({ lowLatencyMode: true, liveSyncDurationCount: 2, backBufferLength: 30 });
    w.hls = hls;
    hls.loadSource(src);
    hls.attachMedia(video);
    void video.play().catch(() => undefined);
  }, classicUrl);
  const classicBehind = () => classic.evaluate(() => {
    const d = (window as unknown as { hls: { playingDate: Date | null } }).hls.playingDate;
    return d ? (Date.now() - d.getTime()) / 1000 : null;
  });
  // Each page is measured from WARMUP_S after it starts playing until the run's end.
  const measure = async (page: Page, behind: () => Promise<number | null>) => {
    while ((await behind().catch(() => null)) === null && Date.now() < end) await page.waitForTimeout(250);
    return sample(page, behind, Date.now() + WARMUP_S * 1000, end);
  };
  const lowest = LADDER.split(",").at(-1)!;
  // The watch page's own account every 15 s (stderr): behind the broadcaster vs hls.js's distance to its live edge.
  const trace = setInterval(() => {
    void watch
      .evaluate(() => (window as unknown as Handle).pulsecast.player.diagnostics())
      .then((d) => log(`  watch: ${JSON.stringify(d, (k, v) => (typeof v === "number" ? Math.round(v * 100) / 100 : k === "url" ? undefined : v))}`))
      .catch(() => {});
  }, 15_000);
  const [llSamples, classicSamples, partLags, cores] = await Promise.all([
    measure(watch, llBehind),
    measure(classic, classicBehind),
    followParts(`${edge.url}/play/${id}/${session.broadcastId}/${lowest}/ll.m3u8`, () => Date.now() >= end),
    // steady state: from a few seconds after it went live until shortly before the end
    new Promise((r) => setTimeout(r, 5000)).then(() => coresOver(session, Math.max(5000, end - Date.now() - 2000), () => Date.now() >= end)),
  ]);
  clearInterval(trace);
  const stalls = await watch.evaluate(() => (window as unknown as Handle).pulsecast.player.diagnostics().stalls);
  log(`run ${i + 1}: watch page at the end: ${JSON.stringify(await watch.evaluate(() => (window as unknown as Handle).pulsecast.player.diagnostics()))}`);
  await publisher.stop();
  await once(session, "ended");
  await ctx.close();
  const r: RunResult = {
    g2gP50: percentile(llSamples, 50),
    g2gP95: percentile(llSamples, 95),
    classicP50: percentile(classicSamples, 50),
    stalls,
    partLagP95: percentile(partLags, 95),
    announceLagP95: percentile(announceLags, 95),
    firstPartS: firstPartAt / 1000,
    cores,
  };
  log(
    `run ${i + 1}: LL behind p50 ${r.g2gP50.toFixed(2)} s p95 ${r.g2gP95.toFixed(2)} s (${llSamples.length} samples), classic p50 ${r.classicP50.toFixed(2)} s (${classicSamples.length}), stalls ${stalls}, ` +
      `part lag p50 ${percentile(partLags, 50).toFixed(0)} p95 ${r.partLagP95.toFixed(0)} ms (${partLags.length} parts; node->edge p95 ${r.announceLagP95.toFixed(0)} ms), ` +
      `first part ${r.firstPartS.toFixed(2)} s after publish (${publishedAt ? "accepted" : "?"}), ffmpeg ${cores.toFixed(2)} cores; load ${loadavg().map((l) => l.toFixed(1)).join(" ")}`,
  );
  return r;
}

/** A normal-latency stream with the same source and ladder: FFmpeg's CPU with the classic encoder settings. */
async function classicCores(): Promise<number> {
  const { id, key } = await createStream("normal");
  const sessionP = once(node.live, "session") as Promise<[LiveSession]>;
  const publisher = publishTestSource(`rtmp://127.0.0.1:${rtmpPort}/live/${key}`, { size: SIZE, durationS: CLASSIC_S + 10 });
  const [session] = await sessionP;
  await once(session, "live");
  const cores = await coresOver(session, Math.max(5000, (CLASSIC_S - 5) * 1000), () => false);
  await publisher.stop();
  await once(session, "ended");
  log(`classic stream ${id}: ffmpeg ${cores.toFixed(2)} cores; load ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  return cores;
}

try {
  log(`bench:llhls: ${RUNS} run(s) of ${DURATION_S} s, source ${SIZE}, ladder ${LADDER}, preset ${PRESET}; load ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  const runs: RunResult[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await llRun(i));
  const classicCore = await classicCores();
  const med = (f: (r: RunResult) => number) => median(runs.map(f).filter(Number.isFinite));
  const core = med((r) => r.cores);
  console.log(
    JSON.stringify({
      glass_to_glass_p50_s: round(med((r) => r.g2gP50)),
      glass_to_glass_p95_s: round(med((r) => r.g2gP95)),
      stalls: runs.reduce((t, r) => t + r.stalls, 0),
      part_lag_p95_ms: round(med((r) => r.partLagP95)),
      first_part_after_publish_s: round(med((r) => r.firstPartS)),
      classic_glass_to_glass_p50_s: round(med((r) => r.classicP50)),
      core_per_stream: round(core),
      classic_core_per_stream: round(classicCore),
      core_ratio: round(core / classicCore),
      part_announce_lag_p95_ms: round(med((r) => r.announceLagP95)),
      runs: RUNS,
      duration_s: DURATION_S,
      source: SIZE,
      ladder: LADDER,
      load_avg_1m: round(loadavg()[0]!),
    }),
  );
} finally {
  await browser.close().catch(() => {});
  await bridge.stop().catch(() => {});
  await edge.stop().catch(() => {});
  await node.stop().catch(() => {});
  await nats.stop().catch(() => {});
  await rm(work, { recursive: true, force: true });
}
process.exit(0);
