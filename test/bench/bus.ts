// `npm run bench:bus`: 10,000 events from a media-side publisher (the media node's outbox) through NATS
// JetStream and the NATS -> HTTP bridge into the edge (the local Workers runtime, BENCH_RUNTIME), against a baseline of the same number
// of events POSTed, signed, straight to the edge's ingress in the same run. Prints one JSON line:
//   {"events":10000,"events_per_s":…,"p50_ms":…,"p99_ms":…,"lost":0,"duplicates_applied":0,"baseline_events_per_s":…}
// Latency is from the event's `time` (stamped when the media side publishes it) to its effect being applied
// in a room object, as measured by the edge (GET /internal/bus/stats). Throughput is events applied per second
// from the first publish to the last effect. Targets: >= 2,000 events/s, p99 <= 100 ms, lost 0, duplicates 0.
//
// Settings (env): BENCH_EVENTS (10000), BENCH_ROOMS (64: events spread over this many room objects),
// BENCH_BASELINE_CONCURRENCY (64: parallel POSTs in the baseline), BENCH_BRIDGE_CONCURRENCY (unset: the
// bridge's default), BENCH_BRIDGE_REPLICAS (1), BENCH_PUBLISH_RATE (0 = as fast as the outbox takes them; else
// events/s), BENCH_PACED_EVENTS (10000: at most this many events, at most 20 s, in the paced latency phase),
// BENCH_PACED_RATE (2000, the target rate; 0 = half the burst's rate; else events/s), BENCH_PACED_LOW_RATE (200: a
// second paced phase at a light load), BENCH_RUNTIME (miniflare, or wrangler: see startBenchEdge), BENCH_DO_STORAGE
// (tmpfs: the Durable Objects' SQLite files on /dev/shm, as bench:notify keeps them; disk; Miniflare only),
// BENCH_CPU_PROFILE (a file for the Worker's CPU profile of the first paced phase; Miniflare only), BENCH_TRACE_GC (1:
// the runtime's full garbage collections per paced phase; Miniflare only, needs coreutils' stdbuf).
//
// Besides the required fields the line carries paced_events_per_s / paced_p50_ms / paced_p99_ms (latency at a
// steady rate: BENCH_PACED_RATE, by default 2,000 events/s), paced_low_* (the same at BENCH_PACED_LOW_RATE, 200/s),
// paced_stages (where the paced latency goes: publish -> stored in JetStream, read back from the stream's own
// timestamps per event, and stored -> the edge's 2xx from the bridge's histogram), paced_cpu_ms_per_event (CPU ms
// each part used per event in a paced phase: edge runtime, bridge, nats-server, and this process, which is the
// publisher (the media node's event bus) and the bench's own driving; all of them share this machine's cores),
// and, with BENCH_TRACE_GC=1, the pauses of the runtime's full garbage collections during each paced phase
// (paced_stages.*.edge_full_gc_pauses_ms; edge_p50_ms/edge_p99_ms there are the edge's own share of the latency), latency_phases (which latency is which:
// the required p50/p99 are the burst's and include its queueing), load_avg_1m (the machine is shared; read
// numbers with it) and bridge_events_per_post (mean batch size over the run). BRIDGE_* variables set for the
// bench reach the bridge (e.g. BRIDGE_BATCH_MAX=1 for the single-event form).

import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { type Envelope, makeEvent } from "../../shared/envelope.ts";
import { createDeliverer } from "../../media-node/src/bridges/nats-to-http/deliver.ts";
import { busConfig } from "../../media-node/src/bus/config.ts";
import { createMediaEventBus } from "../../media-node/src/bus/event-bus.ts";
import { type NatsToHttpBridgeProcess, startNatsToHttpBridge } from "../helpers/bridges.ts";
import { startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { type GcRecord, startMiniflareEdge } from "./lib/miniflare-edge.ts";
import { cpuByPart } from "./lib/proc-memory.ts";
import { startProfiler, summarize } from "./lib/cpu-profile.ts";
import { freePort } from "../helpers/ports.ts";
import { writeFileSync } from "node:fs";
import { startNats } from "../helpers/nats.ts";
import { waitFor } from "../helpers/wait.ts";
import { connect, DeliverPolicy } from "nats";
import { percentile, round } from "./lib/stats.ts";

const N = Number(process.env.BENCH_EVENTS ?? 10_000);
const ROOMS = Number(process.env.BENCH_ROOMS ?? 64);
const BASELINE_CONCURRENCY = Number(process.env.BENCH_BASELINE_CONCURRENCY ?? 64);
/** unset: the bridge's own default (BRIDGE_CONCURRENCY); any other BRIDGE_* variable passes through too */
const BRIDGE_CONCURRENCY = process.env.BENCH_BRIDGE_CONCURRENCY;
const REPLICAS = Number(process.env.BENCH_BRIDGE_REPLICAS ?? 1);
const PUBLISH_RATE = Number(process.env.BENCH_PUBLISH_RATE ?? 0);
const PACED_EVENTS = Number(process.env.BENCH_PACED_EVENTS ?? 10_000);
/** events/s of the paced latency phase (default 2000, the target rate); 0 = half the rate the burst achieved */
const PACED_RATE = Number(process.env.BENCH_PACED_RATE ?? 2000);
/** events/s of the second, light paced phase */
const PACED_LOW_RATE = Number(process.env.BENCH_PACED_LOW_RATE ?? 200);

interface Stats {
  applied: number;
  duplicates: number;
  appliedTwice: number;
  failed: number;
  rejected: Record<string, number>;
  latencyMs: { count: number; p50: number | null; p99: number | null; max: number | null };
  edgeLatencyMs: { count: number; p50: number | null; p99: number | null; max: number | null };
}

const auth = { authorization: `Bearer ${TEST_SECRETS.INTERNAL_API_TOKEN}` };
let since = "";
// The edge's counters live in the Worker isolate's memory; a reload (wrangler dev sees its sources change)
// zeroes them mid-run. That must abort the run, not read as lost events.
async function stats(edge: BenchEdge): Promise<Stats> {
  const s = (await (await fetch(`${edge.url}/internal/bus/stats`, { headers: auth })).json()) as Stats & { since: string };
  if (since && s.since !== since) {
    log("the edge's Worker isolate restarted during the run (sources changed under wrangler dev?): counts are void");
    log(`counters since ${since}, now since ${s.since}; the runtime said:\n${edge.output().slice(-3000)}`);
    await cleanup();
    process.exit(1);
  }
  return s;
}
async function resetStats(edge: BenchEdge): Promise<void> {
  const res = await fetch(`${edge.url}/internal/bus/stats/reset`, { method: "POST", headers: auth });
  since = ((await res.json()) as { since: string }).since;
}

// Every phase (warm-up, baseline, burst, paced) targets the same ROOMS room objects, so the warm-up really warms
// what is measured: a room's first event ever creates its object and SQLite database, a one-time cost per room
// that, repeated for fresh rooms in each phase, would dominate the paced p99 (64 cold objects in 2,000 events).
/**
 * The edge under the local Workers runtime. BENCH_RUNTIME=miniflare (default): bare Miniflare on the
 * `wrangler deploy --dry-run` bundle, the code production runs with no dev proxy in front (see
 * lib/miniflare-edge.ts); BENCH_RUNTIME=wrangler: `wrangler dev`, whose proxy process adds a hop per request.
 */
const RUNTIME = process.env.BENCH_RUNTIME === "wrangler" ? "wrangler" : "miniflare";
/** where the Durable Objects keep their SQLite: tmpfs (default) or disk (see lib/miniflare-edge.ts) */
const DO_STORAGE = process.env.BENCH_DO_STORAGE ?? "tmpfs";
const PROFILE = process.env.BENCH_CPU_PROFILE;
/** BENCH_TRACE_GC=1: the runtime's full garbage collections in each paced phase, with their pauses (Miniflare only) */
const TRACE_GC = process.env.BENCH_TRACE_GC === "1";
const fullGcs: { at: number; pauseMs: number }[] = [];
let inspectorPort: number | undefined;
interface BenchEdge {
  url: string;
  stop(): Promise<void>;
  output(): string;
}
async function startBenchEdge(): Promise<BenchEdge> {
  if (RUNTIME === "wrangler") {
    const edge = await startEdge();
    return { url: edge.url, stop: () => edge.stop(), output: () => edge.process.output() };
  }
  inspectorPort = PROFILE ? await freePort() : undefined;
  const onGc = (r: GcRecord) => {
    if (r.gc === "mc") fullGcs.push({ at: performance.now(), pauseMs: Math.round(r.pause) });
  };
  const edge = await startMiniflareEdge({}, { tmpfsStorage: DO_STORAGE === "tmpfs", inspectorPort, ...(TRACE_GC && { onGc }) });
  return { url: edge.url, stop: () => edge.stop(), output: () => "(Worker logs are on stderr)" };
}

const event = (n: number): Envelope =>
  makeEvent(
    "stream.started",
    { streamId: `s${n % ROOMS}`, roomId: `bench-${n % ROOMS}`, nodeId: "bench-node", app: "live", resumed: n >= ROOMS },
    { source: "media-node/bench-node", subject: `stream/s${n % ROOMS}` },
  );

const log = (m: string) => process.stderr.write(`[bench:bus] ${m}\n`);
const cleanups: (() => Promise<unknown>)[] = [];
async function cleanup() {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
}

async function warmUp(edge: BenchEdge) {
  // Wake every room object once so neither phase pays the first-instantiation cost.
  await Promise.all(Array.from({ length: ROOMS }, (_, i) => postSigned(edge, event(i))));
}

// The baseline posts with the bridge's own HTTP client (keep-alive node:http, fresh signature per attempt),
// so the comparison is the bus and the bridge against no bus at all, not one HTTP client against another.
let deliverer: ReturnType<typeof createDeliverer> | undefined;
async function postSigned(edge: BenchEdge, e: Envelope): Promise<void> {
  deliverer ??= createDeliverer({ url: `${edge.url}/hooks/events`, secrets: [TEST_SECRETS.EDGE_INGRESS_SECRET], timeoutMs: 30_000, maxSockets: BASELINE_CONCURRENCY });
  const body = JSON.stringify(e);
  for (let attempt = 1; ; attempt++) {
    const outcome = await deliverer(e.id, body);
    if (outcome.kind === "response" && outcome.status >= 200 && outcome.status < 300) return;
    if (outcome.kind === "response" && outcome.status < 500) throw new Error(`edge refused a baseline event: ${outcome.status} ${outcome.body}`);
    // Same as the bridge: a 5xx or a dropped connection is retried.
    await new Promise((r) => setTimeout(r, Math.min(1000, 10 * attempt)));
  }
}

async function baseline(edge: BenchEdge): Promise<number> {
  const events = Array.from({ length: N }, (_, i) => event(i));
  await warmUp(edge);
  await resetStats(edge);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: BASELINE_CONCURRENCY }, async () => {
      while (next < events.length) await postSigned(edge, events[next++]!);
    }),
  );
  const s = await stats(edge);
  if (s.applied !== N) throw new Error(`baseline: ${s.applied} of ${N} applied`);
  return N / ((performance.now() - t0) / 1000);
}

/** The bridge's stored -> 2xx histogram, summed over replicas: [upper bound ms, cumulative count] per bucket. */
async function histogram(bridges: NatsToHttpBridgeProcess[]): Promise<[number, number][]> {
  const sums = new Map<number, number>();
  for (const b of bridges) {
    const text = await (await fetch(b.metricsUrl)).text();
    for (const m of text.matchAll(/^pulsecast_bridge_delivery_latency_seconds_bucket\{le="([^"]+)"\} (\d+)/gm)) {
      const le = m[1] === "+Inf" ? Number.POSITIVE_INFINITY : Number(m[1]) * 1000;
      sums.set(le, (sums.get(le) ?? 0) + Number(m[2]));
    }
  }
  return [...sums].sort((a, b) => a[0] - b[0]);
}

/** The smallest bucket bound holding the p-th percentile of a cumulative histogram (null for no samples). */
function bucketPercentile(buckets: [number, number][], p: number): number | null {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total === 0) return null;
  const hit = buckets.find(([, n]) => n >= (p / 100) * total);
  return hit && Number.isFinite(hit[0]) ? hit[0] : null;
}

/** One metric summed over the bridge replicas (all phases: warm-up, burst and paced). */
async function sumMetric(bridges: NatsToHttpBridgeProcess[], name: string): Promise<number> {
  let sum = 0;
  for (const b of bridges) sum += await b.metric(name);
  return sum;
}

async function main() {
  log(`starting nats-server and the edge (wrangler dev)`);
  const [nats, edge] = await Promise.all([startNats(), startBenchEdge()]);
  cleanups.push(() => nats.stop(), () => edge.stop());

  log(`baseline: ${N} signed POSTs straight to the edge, ${BASELINE_CONCURRENCY} at a time`);
  const baselineRate = await baseline(edge);
  log(`baseline ${baselineRate.toFixed(0)} events/s`);

  const bridges: NatsToHttpBridgeProcess[] = [];
  for (let i = 0; i < REPLICAS; i++) {
    bridges.push(await startNatsToHttpBridge({ nats, edgeUrl: `${edge.url}/hooks/events`, env: BRIDGE_CONCURRENCY ? { BRIDGE_CONCURRENCY } : {} }));
  }
  cleanups.push(...bridges.map((b) => () => b.stop()));
  const dir = await mkdtemp(join(tmpdir(), "pulsecast-bench-outbox-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const bus = createMediaEventBus(busConfig({ ...nats.settings("media-node"), outboxDir: dir }), { name: "bench", log: () => undefined });
  await bus.start();
  cleanups.push(() => bus.stop());

  // Warm the path (connections, consumer, room objects) outside the measurement.
  // Counters zeroed first: the baseline's 10,000 would satisfy the wait at once, and warm-up events still on
  // their way would then be counted in the burst (more applied than published: a negative `lost`).
  await resetStats(edge);
  const warm = Array.from({ length: ROOMS }, (_, i) => event(i));
  for (const e of warm) await bus.publish(e);
  await waitFor("warm-up events applied", async () => (await stats(edge)).applied >= warm.length, 60_000, 100);
  await resetStats(edge);

  /** Publishes `count` events (at `rate`/s, or as fast as possible) and waits until the edge applied them. */
  async function pipeline(count: number, rate: number) {
    await resetStats(edge);
    const t0 = performance.now();
    // Paced: each event leaves on its schedule without waiting for the previous one's outbox commit (a real node
    // emits from many places at once; waiting for each commit in turn capped the rate near 1,400/s here, below the
    // rate asked for). The burst awaits a group commit every 200 events.
    const committing: Promise<unknown>[] = [];
    for (let i = 0; i < count; i++) {
      if (rate > 0) {
        const wait = t0 + (i / rate) * 1000 - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      }
      // `time` is stamped at publish, so the edge's latency is publish -> applied.
      const p = bus.publish({ ...event(i), time: new Date().toISOString() });
      if (rate > 0) committing.push(p);
      else if (i % 200 === 199) await p;
    }
    const publishedS = (performance.now() - t0) / 1000;
    await Promise.all(committing);
    // Done when all are applied; given up only when nothing moved for a minute (then the rest is lost).
    let last = -1;
    let lastMove = performance.now();
    for (;;) {
      const s = await stats(edge);
      if (s.applied >= count) return { stats: s, seconds: (performance.now() - t0) / 1000, publishRate: count / publishedS };
      if (s.applied !== last) [last, lastMove] = [s.applied, performance.now()];
      else if (performance.now() - lastMove > 60_000) {
        log(`no progress for 60 s at ${s.applied} of ${count}`);
        return { stats: s, seconds: (performance.now() - t0) / 1000, publishRate: count / publishedS };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  log(`pipeline burst: ${N} events media bus -> JetStream -> ${REPLICAS} bridge replica(s) -> edge`);
  const burst = await pipeline(N, PUBLISH_RATE);
  const burstRate = burst.stats.applied / burst.seconds;
  log(`burst ${burstRate.toFixed(0)} events/s, p50 ${burst.stats.latencyMs.p50} ms, p99 ${burst.stats.latencyMs.p99} ms (queueing included)`);
  // A burst measures throughput; its latency is mostly time spent queued behind the burst. Latency of the
  // path itself is measured paced, by default at the target rate of 2,000 events/s.
  const pacedRate = PACED_RATE > 0 ? PACED_RATE : Math.max(1, Math.floor(burstRate / 2));
  const pacedCount = Math.min(PACED_EVENTS, Math.ceil(pacedRate * 20));
  const opsNc = await connect(nats.options("ops"));
  cleanups.push(() => opsNc.close());
  const jsm = await opsNc.jetstreamManager();

  /** Where a paced phase's latency goes: publish -> stored in JetStream (per event), stored -> edge 2xx (bridge histogram). */
  async function pacedPhase(count: number, rate: number) {
    const fromSeq = (await jsm.streams.info("EVENTS")).state.last_seq + 1;
    const before = await histogram(bridges);
    log(`paced: ${count} events at ${rate}/s`);
    const cpu = cpuByPart((pid, cmd) =>
      pid === process.pid ? "publisher_and_driver" : /workerd/.test(cmd) ? "edge" : /nats-to-http/.test(cmd) ? "bridge" : /nats-server/.test(cmd) ? "nats" : "other",
    );
    const startedAt = performance.now();
    const result = await pipeline(count, rate);
    const endedAt = performance.now();
    const cpuMsPerEvent = Object.fromEntries(Object.entries(cpu()).map(([part, s]) => [part, round((s * 1000) / count)]));
    const after = await histogram(bridges);
    const stored: number[] = [];
    const consumer = await opsNc.jetstream().consumers.get("EVENTS", { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq });
    const messages = await consumer.consume();
    for await (const m of messages) {
      const e = m.json<Envelope>();
      stored.push(m.info.timestampNanos / 1e6 - Date.parse(e.time));
      if (m.info.pending === 0) break;
    }
    await messages.close();
    const delta = after.map(([le, n], i) => [le, n - (before[i]?.[1] ?? 0)] as [number, number]);
    const stages = {
      publish_to_jetstream_p50_ms: round(percentile(stored, 50)),
      publish_to_jetstream_p99_ms: round(percentile(stored, 99)),
      jetstream_to_edge_2xx_p50_ms_at_most: bucketPercentile(delta, 50),
      jetstream_to_edge_2xx_p99_ms_at_most: bucketPercentile(delta, 99),
      edge_p50_ms: result.stats.edgeLatencyMs.p50,
      edge_p99_ms: result.stats.edgeLatencyMs.p99,
      ...(TRACE_GC && { edge_full_gc_pauses_ms: fullGcs.filter((g) => g.at >= startedAt && g.at <= endedAt).map((g) => g.pauseMs) }),
    };
    log(`paced ${rate}/s (published at ${result.publishRate.toFixed(0)}/s): p50 ${result.stats.latencyMs.p50} ms, p99 ${result.stats.latencyMs.p99} ms; stages ${JSON.stringify(stages)}; CPU ms per event ${JSON.stringify(cpuMsPerEvent)}`);
    return { ...result, stages, cpuMsPerEvent };
  }

  const profiler = inspectorPort !== undefined ? await startProfiler(inspectorPort, "pulsecast-edge") : null;
  const paced = await pacedPhase(pacedCount, pacedRate);
  if (profiler && PROFILE) {
    const profile = await profiler.stop();
    writeFileSync(PROFILE, JSON.stringify(profile));
    log(`Worker CPU profile of the ${pacedRate}/s phase in ${PROFILE}; heaviest by self time:\n${summarize(profile).join("\n")}`);
  }
  const lowCount = Math.min(PACED_EVENTS, Math.ceil(PACED_LOW_RATE * 20));
  const low = await pacedPhase(lowCount, PACED_LOW_RATE);

  const result = {
    events: N,
    events_per_s: Math.round(burstRate),
    p50_ms: burst.stats.latencyMs.p50,
    p99_ms: burst.stats.latencyMs.p99,
    lost: N - burst.stats.applied + (pacedCount - paced.stats.applied) + (lowCount - low.stats.applied),
    duplicates_applied: burst.stats.appliedTwice + paced.stats.appliedTwice + low.stats.appliedTwice,
    baseline_events_per_s: Math.round(baselineRate),
    paced_events_per_s: pacedRate,
    paced_published_per_s: Math.round(paced.publishRate),
    paced_p50_ms: paced.stats.latencyMs.p50,
    paced_p99_ms: paced.stats.latencyMs.p99,
    paced_low_events_per_s: PACED_LOW_RATE,
    paced_low_published_per_s: Math.round(low.publishRate),
    paced_low_p50_ms: low.stats.latencyMs.p50,
    paced_low_p99_ms: low.stats.latencyMs.p99,
    paced_stages: { [`${pacedRate}_per_s`]: paced.stages, [`${PACED_LOW_RATE}_per_s`]: low.stages },
    paced_cpu_ms_per_event: { [`${pacedRate}_per_s`]: paced.cpuMsPerEvent, [`${PACED_LOW_RATE}_per_s`]: low.cpuMsPerEvent },
    load_avg_1m: Number(loadavg()[0]!.toFixed(1)),
    do_storage: RUNTIME === "miniflare" ? DO_STORAGE : "wrangler dev",
    latency_phases: `p50_ms/p99_ms: burst (all ${N} published at once; mostly time queued behind the burst); paced_p50_ms/paced_p99_ms: steady ${pacedRate}/s; paced_low_*: steady ${PACED_LOW_RATE}/s`,
    bridge_events_per_post: Number(((await sumMetric(bridges, "pulsecast_bridge_batch_size_events_sum")) / Math.max(1, await sumMetric(bridges, "pulsecast_bridge_batch_size_events_count"))).toFixed(1)),
  };
  console.log(JSON.stringify(result));
  deliverer?.close();
  await cleanup();
  process.exit(0);
}

process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));
main().catch(async (error: Error) => {
  log(`failed: ${error.stack ?? error.message}`);
  await cleanup();
  process.exit(1);
});
