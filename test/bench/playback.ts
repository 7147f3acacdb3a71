// `npm run bench:playback`: BENCH_PLAYERS simulated HLS players polling a live ladder through the Worker's
// /play (bare Miniflare on the deploy bundle, origin pull from PLAYBACK_ORIGIN_URL), then the same load
// straight against the origin as the baseline, in the same run.
//
// A player fetches the master and its rendition's init segment once, then polls its media playlist every
// target duration and fetches each new segment once (starting at the live edge), as hls.js does on a live
// stream. Players are spread over the renditions and start at random phases of the target duration.
//
// The origin is a child process (its own process, as a CDN origin would be) that serves a synthetic live
// ladder: a new segment per rendition every BENCH_SEGMENT_S seconds, a sliding 6-segment window, and counts
// the requests it gets.
//
// stdout gets ONE JSON line; progress goes to stderr.
//   requests_per_s            player requests answered per second through the Worker
//   segment_p50_ms/p99_ms     time to the last byte of a segment (init segments included) through the Worker
//   playlist_p99_ms           same for media playlists
//   cache_hit_ratio           Worker answers that needed no origin fetch of their own (from the isolate's
//                             memory, a Cache API hit, or joining another request's in-flight fetch), over all
//                             Worker answers
//   origin_requests_per_segment  segment/init requests the origin got from the Worker per distinct object played
//   baseline_segment_p99_ms   segment p99 with the same players straight against the origin
//
// Settings (env, default): BENCH_PLAYERS (200), BENCH_SECONDS (20), BENCH_SEGMENT_S (2), BENCH_SIZE_SCALE (1),
// BENCH_SIGNED (0; 1: a signed stream, every player with its own viewer token in the path).
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:http";
import { performance } from "node:perf_hooks";
import { TEST_SECRETS } from "../helpers/edge.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import { startMiniflareEdge } from "./lib/miniflare-edge.ts";
import { percentile, round } from "./lib/stats.ts";

const PLAYERS = Number(process.env.BENCH_PLAYERS ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const SEGMENT_S = Number(process.env.BENCH_SEGMENT_S ?? 2);
/** scales the ladder's segment sizes (1 = about 3, 1.5 and 0.8 Mbit/s) */
const SIZE_SCALE = Number(process.env.BENCH_SIZE_SCALE ?? 1);
const WINDOW = 6;
/** name and bytes per segment (about 3, 1.5 and 0.8 Mbit/s for 2 s segments) */
const LADDER: [string, number][] = [
  ["720p", Math.round(750_000 * SIZE_SCALE)],
  ["480p", Math.round(375_000 * SIZE_SCALE)],
  ["360p", Math.round(200_000 * SIZE_SCALE)],
];
const BROADCAST = "brd_bench";
const SIGNED = process.env.BENCH_SIGNED === "1";
const SIGNING_KEYS = "bench:bench-playback-signing-key-0123456789abcdef";

// ---- the origin (child process) ---------------------------------------------------------------------------

function runOrigin(): void {
  const t0 = Date.now();
  const counts = { playlist: 0, segment: 0, other: 0 };
  const bodies = new Map(LADDER.map(([name, size]) => [name, Buffer.alloc(size, name)]));
  const seqNow = () => Math.floor((Date.now() - t0) / (SEGMENT_S * 1000)) + WINDOW;
  const server = createServer((req, res) => {
    const url = req.url ?? "/";
    if (url === "/__stats") return res.end(JSON.stringify(counts));
    if (url === "/__reset") {
      counts.playlist = counts.segment = counts.other = 0;
      return res.end("{}");
    }
    const m = /^\/media\/live\/[A-Za-z0-9_-]+\/(.+)$/.exec(url);
    const path = m?.[1] ?? "";
    if (path === "live.m3u8") {
      counts.playlist++;
      const body = ["#EXTM3U", "#EXT-X-VERSION:7", ...LADDER.flatMap(([name, size]) => [`#EXT-X-STREAM-INF:BANDWIDTH=${Math.round((size * 8) / SEGMENT_S)}`, `${BROADCAST}/${name}/index.m3u8`]), ""].join("\n");
      res.writeHead(200, { "content-type": "application/vnd.apple.mpegurl" });
      return res.end(body);
    }
    const pm = /^brd_bench\/(\w+)\/index\.m3u8$/.exec(path);
    if (pm && bodies.has(pm[1]!)) {
      counts.playlist++;
      const last = seqNow();
      const lines = ["#EXTM3U", "#EXT-X-VERSION:7", `#EXT-X-TARGETDURATION:${SEGMENT_S}`, `#EXT-X-MEDIA-SEQUENCE:${last - WINDOW + 1}`, '#EXT-X-MAP:URI="init.mp4"'];
      for (let n = last - WINDOW + 1; n <= last; n++) lines.push(`#EXTINF:${SEGMENT_S.toFixed(3)},`, `seg_${n}.m4s`);
      res.writeHead(200, { "content-type": "application/vnd.apple.mpegurl" });
      return res.end(lines.join("\n") + "\n");
    }
    const sm = /^brd_bench\/(\w+)\/(seg_(\d+)\.m4s|init\.mp4)$/.exec(path);
    if (sm && bodies.has(sm[1]!) && (sm[2] === "init.mp4" || Number(sm[3]) <= seqNow())) {
      counts.segment++;
      const body = sm[2] === "init.mp4" ? Buffer.alloc(800, 1) : bodies.get(sm[1]!)!;
      res.writeHead(200, { "content-type": "video/iso.segment", "content-length": body.length });
      return res.end(body);
    }
    counts.other++;
    res.writeHead(404).end();
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, "127.0.0.1", () => {
    const a = server.address();
    process.stdout.write(`LISTENING ${typeof a === "object" && a ? a.port : a}\n`);
  });
  process.on("SIGTERM", () => process.exit(0));
}

async function startOrigin(): Promise<{ url: string; child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [import.meta.filename, "--origin"], { stdio: ["ignore", "pipe", "inherit"], env: process.env });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /LISTENING (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once("exit", (code) => reject(new Error(`origin exited (${code}) before listening`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}

// ---- players ---------------------------------------------------------------------------------------------

interface PhaseStats {
  /** segment latency by cache outcome (stderr detail: where the tail comes from) */
  byOutcome: Record<string, number[]>;
  segmentMs: number[];
  playlistMs: number[];
  requests: number;
  errors: number;
  cache: Record<string, number>;
  objects: Set<string>;
}

async function timedGet(url: string, stats: PhaseStats, kind: "segment" | "playlist"): Promise<string | null> {
  const t = performance.now();
  try {
    const res = await fetch(url);
    const body = kind === "playlist" ? await res.text() : (await res.arrayBuffer(), "");
    const ms = performance.now() - t;
    stats.requests++;
    const outcome = res.headers.get("x-pulsecast-cache");
    if (outcome) stats.cache[outcome] = (stats.cache[outcome] ?? 0) + 1;
    if (res.status !== 200) {
      stats.errors++;
      return null;
    }
    (kind === "segment" ? stats.segmentMs : stats.playlistMs).push(ms);
    if (kind === "segment" && outcome) (stats.byOutcome[outcome] ??= []).push(ms);
    return body;
  } catch (error) {
    stats.errors++;
    process.stderr.write(`request failed: ${url}: ${(error as Error).message}\n`);
    return null;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

async function player(index: number, roots: (i: number) => string, deadline: number, stats: PhaseStats): Promise<void> {
  const root = roots(index);
  const [rendition] = LADDER[index % LADDER.length]!;
  await sleep(Math.random() * SEGMENT_S * 1000);
  await timedGet(`${root}/live.m3u8`, stats, "playlist");
  const base = `${root}/${BROADCAST}/${rendition}`;
  stats.objects.add(`${rendition}/init.mp4`);
  await timedGet(`${base}/init.mp4`, stats, "segment");
  let last = -1;
  while (performance.now() < deadline) {
    const started = performance.now();
    const text = await timedGet(`${base}/index.m3u8`, stats, "playlist");
    const seqs = [...(text ?? "").matchAll(/^seg_(\d+)\.m4s$/gm)].map((m) => Number(m[1]));
    const fresh = last < 0 ? seqs.slice(-1) : seqs.filter((n) => n > last);
    for (const n of fresh) {
      stats.objects.add(`${rendition}/seg_${n}.m4s`);
      await timedGet(`${base}/seg_${n}.m4s`, stats, "segment");
    }
    if (seqs.length) last = Math.max(last, ...seqs);
    await sleep(SEGMENT_S * 1000 - (performance.now() - started));
  }
}

async function phase(label: string, roots: (i: number) => string): Promise<PhaseStats & { seconds: number }> {
  const stats: PhaseStats = { byOutcome: {}, segmentMs: [], playlistMs: [], requests: 0, errors: 0, cache: {}, objects: new Set() };
  process.stderr.write(`${label}: ${PLAYERS} players for ${SECONDS} s against ${roots(0)}\n`);
  const t0 = performance.now();
  const deadline = t0 + SECONDS * 1000;
  await Promise.all(Array.from({ length: PLAYERS }, (_, i) => player(i, roots, deadline, stats)));
  const seconds = (performance.now() - t0) / 1000;
  process.stderr.write(`${label}: ${stats.requests} requests, ${stats.errors} errors, segment p50/p99 ${round(percentile(stats.segmentMs, 50))}/${round(percentile(stats.segmentMs, 99))} ms, cache ${JSON.stringify(stats.cache)}\n`);
  for (const [outcome, ms] of Object.entries(stats.byOutcome)) process.stderr.write(`${label}:   segments answered by ${outcome}: ${ms.length}, p50/p99 ${round(percentile(ms, 50))}/${round(percentile(ms, 99))} ms\n`);
  return { ...stats, seconds };
}

async function main(): Promise<void> {
  const origin = await startOrigin();
  const edge = await startMiniflareEdge({ PLAYBACK_ORIGIN_URL: `${origin.url}/media`, PLAYBACK_BASE_URL: "http://127.0.0.1", PLAYBACK_SIGNING_KEYS: SIGNING_KEYS });
  try {
    const jwt = await mintHs256(TEST_SECRETS.JWT_SECRET, { sub: "bench-broadcaster", claims: { role: "broadcaster" } });
    const created = await fetch(`${edge.url}/streams`, { method: "POST", headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json" }, body: JSON.stringify({ playbackPolicy: SIGNED ? "signed" : "public" }) });
    if (created.status !== 201) throw new Error(`POST /streams answered ${created.status}: ${await created.text()}`);
    const stream = (await created.json()) as { id: string };

    const counts = async () => (await (await fetch(`${origin.url}/__stats`)).json()) as { playlist: number; segment: number };
    await fetch(`${origin.url}/__reset`);
    // Signed: every player plays with its own token (as viewers do), so the cache must ignore the token.
    const tokens: string[] = [];
    for (let i = 0; SIGNED && i < PLAYERS; i++) {
      const res = await fetch(`${edge.url}/streams/${stream.id}/playback-tokens`, { method: "POST", headers: { authorization: `Bearer ${TEST_SECRETS.INTERNAL_API_TOKEN}`, "content-type": "application/json" }, body: JSON.stringify({ viewerId: `viewer-${i}` }) });
      if (res.status !== 201) throw new Error(`playback-tokens answered ${res.status}: ${await res.text()}`);
      tokens.push(((await res.json()) as { token: string }).token);
    }
    const viaEdge = await phase("edge", (i) => `${edge.url}/play/${SIGNED ? tokens[i] : stream.id}`);
    const fromEdge = await counts();
    await fetch(`${origin.url}/__reset`);
    const baseline = await phase("baseline", () => `${origin.url}/media/live/${stream.id}`);

    const answered = Object.values(viaEdge.cache).reduce((a, b) => a + b, 0);
    const served = answered - (viaEdge.cache.miss ?? 0);
    const line = {
      players: PLAYERS,
      signed: SIGNED,
      requests_per_s: round(viaEdge.requests / viaEdge.seconds),
      segment_p50_ms: round(percentile(viaEdge.segmentMs, 50)),
      segment_p99_ms: round(percentile(viaEdge.segmentMs, 99)),
      playlist_p99_ms: round(percentile(viaEdge.playlistMs, 99)),
      cache_hit_ratio: round(answered ? served / answered : Number.NaN),
      origin_requests_per_segment: round(fromEdge.segment / viaEdge.objects.size),
      baseline_segment_p99_ms: round(percentile(baseline.segmentMs, 99)),
      baseline_segment_p50_ms: round(percentile(baseline.segmentMs, 50)),
      baseline_playlist_p99_ms: round(percentile(baseline.playlistMs, 99)),
      errors: viaEdge.errors,
      seconds: SECONDS,
      segment_s: SEGMENT_S,
      segment_bytes: Object.fromEntries(LADDER),
    };
    process.stdout.write(JSON.stringify(line) + "\n");
  } finally {
    await edge.stop();
    await origin.stop();
  }
}

if (process.argv.includes("--origin")) runOrigin();
else
  main().catch((error: unknown) => {
    process.stderr.write(`bench:playback failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
