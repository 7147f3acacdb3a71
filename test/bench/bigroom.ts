// `npm run bench:bigroom`: what a big room (shards + coordinator) carries over to production, measured on one
// machine: the load on the busiest object, against the single room at the same audience, and latency split into
// what the design costs and what one overloaded local thread adds.
//
// Local workerd runs every object on one thread, so total throughput here cannot beat the single room; what
// transfers is per-object load (sockets, incoming events/s, CPU of the busiest object) and correctness.
//
//   1. single: one small room, BENCH_SINGLE_CLIENTS (4,000) clients; workerd CPU over the window is the room's
//      (the front Worker is idle once everyone is connected).
//   2. big, growing: the same big room of BENCH_SHARDS (8) shards measured at each audience of BENCH_STEPS and at
//      BENCH_SINGLE_CLIENTS: latency (p50/p99 send -> receipt, split into up to the coordinator and down from it),
//      workerd's CPU s/s and the busiest client thread's event-loop use. At the single room's audience, each object
//      times its handlers (performance.now() around every handler; the internal stats route reads them); the
//      busiest object's share of all handler time, times workerd's CPU over the window, is its CPU. Ratio vs 1.
//   3. big, full: BENCH_CLIENTS (8,000) clients: sockets and incoming events/s per object, the coordinator's
//      events/s, and every chat message checked at every client: lost, duplicated, reordered; latency.
// Latency is end to end, one clock (the clients are threads of this process). `p99_ms_unsaturated` is the p99 at
// the highest audience where the shards kept up with what the clients sent and neither workerd nor a client thread
// was busier than SATURATED: there, latency is what the design costs (windows, hops, send loops), not time spent
// queued behind a thread that is out of CPU (or, on a shared machine, waiting for a core).
// Workload everywhere: all clients but BENCH_CHATTERS (10) react once a second (random phase); the chatters
// (role member) send one chat message a second each, staggered: 10 messages/s. The clients live on
// BENCH_CLIENT_THREADS (2) worker threads (lib/room-audience.ts).
//
// stdout gets ONE JSON line; progress goes to stderr. Bounded in time (BENCH_BUDGET_S) and stops itself;
// traffic only on 127.0.0.1.
import { execFileSync, spawnSync } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:http";
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { isMainThread } from "node:worker_threads";
import { TEST_SECRETS } from "../helpers/edge.ts";
import { type BenchEdge, startMiniflareEdge } from "./lib/miniflare-edge.ts";
import { Audience, type SliceReport } from "./lib/room-audience.ts";
import { cpuSeconds, openFds } from "./lib/proc-memory.ts";
import { percentile, round } from "./lib/stats.ts";

function setting(name: string, fallback: number): number {
  const raw = process.env[name];
  const n = Number(raw);
  return raw !== undefined && raw !== "" && Number.isFinite(n) && n >= 0 ? n : fallback;
}

const CLIENTS = setting("BENCH_CLIENTS", 8000);
const SINGLE_CLIENTS = setting("BENCH_SINGLE_CLIENTS", 4000);
const SHARDS = setting("BENCH_SHARDS", 8);
const SHARD_MAX = setting("BENCH_SHARD_MAX", 1000);
const CHATTERS = setting("BENCH_CHATTERS", 10);
const WINDOW_S = setting("BENCH_WINDOW_S", 10);
const WARM_S = setting("BENCH_WARM_S", 3);
const CONCURRENCY = setting("BENCH_CONNECT_CONCURRENCY", 50);
const BUDGET_S = setting("BENCH_BUDGET_S", 900);
/** client threads (each holds a slice of the sockets and reads them) */
const THREADS = Math.max(1, setting("BENCH_CLIENT_THREADS", 2));
/** audiences measured on the way to BENCH_CLIENTS, comma-separated */
const STEPS = (process.env.BENCH_STEPS ?? "500,1000,2000,3000").split(",").map(Number).filter((n) => Number.isInteger(n) && n > 0);
/** a thread busier than this (workerd's CPU s/s, a client thread's event loop) is queueing, not just working */
const SATURATED = 0.8;
/** shards that handle fewer of the frames sent than this are falling behind (whether out of CPU or waiting for a core) */
const KEPT_UP = 0.99;
const INTERNAL_TOKEN = TEST_SECRETS.INTERNAL_API_TOKEN;

const log = (m: string) => process.stderr.write(`[bigroom] ${m}\n`);

// ---------------------------------------------------------------------------------------------------------
// Open files: workerd uses two descriptors per socket locally and this process one. When the soft limit is too
// low, run again under a raised one (up to the hard limit); what is left over bounds the client count.

function ensureOpenFiles(): void {
  const need = 2 * CLIENTS + 2000;
  const soft = Number(execFileSync("bash", ["-c", "ulimit -Sn"]).toString().trim());
  if (!Number.isFinite(soft) || soft >= need || process.env.BENCH_FD_RAISED) return;
  const hard = execFileSync("bash", ["-c", "ulimit -Hn"]).toString().trim();
  log(`open-files limit ${soft} < ${need}: running again with ulimit -n ${hard}`);
  const res = spawnSync("bash", ["-c", `ulimit -n ${hard} && exec "$0" "$@"`, process.execPath, ...process.execArgv, import.meta.filename], {
    stdio: "inherit",
    env: { ...process.env, BENCH_FD_RAISED: "1" },
  });
  process.exit(res.status ?? 1);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ObjectStats {
  name: string;
  kind: string;
  sockets: number;
  events: number;
  clientFrames: number;
  busyMs: number;
  sends: number;
  sinceMs: number;
}

async function internal(edge: BenchEdge, path: string, method = "GET"): Promise<unknown> {
  const res = await fetch(`${edge.url}${path}`, { method, headers: { authorization: `Bearer ${INTERNAL_TOKEN}` } });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** Measures one window: workerd CPU seconds, and (big room) every object's counters over the same window. */
async function window(edge: BenchEdge, bigRoom: string | null): Promise<{ cpuS: number; seconds: number; objects: ObjectStats[] }> {
  if (bigRoom) await internal(edge, `/internal/bigrooms/${bigRoom}/stats/reset`, "POST");
  const cpu0 = cpuSeconds(edge.workerdPids());
  const t0 = performance.now();
  await sleep(WINDOW_S * 1000);
  const objects = bigRoom ? ((await internal(edge, `/internal/bigrooms/${bigRoom}/stats`)) as { objects: ObjectStats[] }).objects : [];
  const seconds = (performance.now() - t0) / 1000;
  return { cpuS: cpuSeconds(edge.workerdPids()) - cpu0, seconds, objects };
}

async function startBridgeSink(): Promise<{ url: string; stop(): Promise<void> }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(204).end());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/events`, stop: () => new Promise((resolve) => server.close(() => resolve())) };
}

// ---------------------------------------------------------------------------------------------------------

interface Step {
  clients: number;
  p50_ms: number;
  p99_ms: number;
  up_p99_ms: number;
  down_p99_ms: number;
  workerd_cpu_s_per_s: number;
  harness_elu: number;
  /** client frames the shards handled per client frame sent (1 = keeping up; less = a queue is growing) */
  handled_ratio: number;
  /** the machine's 1-minute load average at the end of the window (2 cores: above 2, everything waits for a core) */
  loadavg_1m: number;
}

const merged = (reports: SliceReport[], key: "latencies" | "up" | "down") => {
  const out = new Float64Array(reports.reduce((n, r) => n + r[key].length, 0));
  let at = 0;
  for (const r of reports) {
    out.set(r[key], at);
    at += r[key].length;
  }
  return out;
};

/** One measured window of the big room at its current audience: latency, workerd CPU, harness load, per-object counters. */
async function measure(edge: BenchEdge, room: string, a: Audience): Promise<{ step: Step; objects: ObjectStats[]; reports: SliceReport[]; cpuS: number; seconds: number }> {
  await a.record(true);
  const w = await window(edge, room);
  await a.record(false);
  const reports = await a.report();
  const lat = merged(reports, "latencies");
  const step: Step = {
    clients: a.size,
    p50_ms: round(percentile(lat, 50)),
    p99_ms: round(percentile(lat, 99)),
    up_p99_ms: round(percentile(merged(reports, "up"), 99)),
    down_p99_ms: round(percentile(merged(reports, "down"), 99)),
    workerd_cpu_s_per_s: round(w.cpuS / w.seconds),
    harness_elu: round(Math.max(...reports.map((r) => r.elu))),
    // Every client sends one frame a second (a reaction, or a chatter's message).
    handled_ratio: round(w.objects.reduce((n, o) => n + o.clientFrames / (o.sinceMs / 1000), 0) / a.size),
    loadavg_1m: round(loadavg()[0]!),
  };
  log(`big room, ${a.size} clients: p50 ${step.p50_ms} ms, p99 ${step.p99_ms} ms (up p99 ${step.up_p99_ms}, down p99 ${step.down_p99_ms}); workerd ${step.workerd_cpu_s_per_s} s/s; busiest client thread ${step.harness_elu} busy; shards handled ${step.handled_ratio} of the client frames; load ${step.loadavg_1m}`);
  return { step, objects: w.objects, reports, cpuS: w.cpuS, seconds: w.seconds };
}

async function main(): Promise<void> {
  ensureOpenFiles();
  const deadline = setTimeout(() => {
    log(`time budget of ${BUDGET_S} s exceeded: stopping`);
    process.exit(2);
  }, BUDGET_S * 1000);
  deadline.unref();
  const sink = await startBridgeSink();
  // The single room must stay one object at 4,000 clients: it does not grow big here.
  const baseVars = { BRIDGE_URL: sink.url, ROOM_MAX_CONNECTIONS: String(SINGLE_CLIENTS + 100), ROOM_SHARD_AT: "0" };
  const audience = (edge: BenchEdge, room: string) => new Audience(THREADS, { url: `${edge.wsUrl}/parties/room/${room}`, secret: TEST_SECRETS.JWT_SECRET, chatters: CHATTERS });

  // 1. The single room. Its join diffs go to every socket; a 100 ms window (instead of 10) keeps connecting 4,000
  // clients from taking minutes. At 10 chat messages/s spaced 100 ms apart each flush still carries about one
  // message, so the steady state it is measured in sends the same frames per socket.
  let single: { cpuS: number; seconds: number };
  {
    const edge = await startMiniflareEdge({ ...baseVars, ROOM_FLUSH_MS: "100" });
    const a = audience(edge, "bench-single");
    try {
      await a.growTo(SINGLE_CLIENTS, CONCURRENCY);
      log(`single room: ${a.size} clients connected`);
      await a.traffic(true);
      await sleep(WARM_S * 1000);
      single = await window(edge, null);
      log(`single room, ${SINGLE_CLIENTS} clients: workerd CPU ${(single.cpuS / single.seconds).toFixed(3)} s/s`);
    } finally {
      await a.close();
      await edge.stop();
    }
  }

  // 2 and 3. The big room, its audience grown step by step (BENCH_STEPS), then to BENCH_CLIENTS.
  const room = "bench-big";
  const edge = await startMiniflareEdge({ ...baseVars, ROOM_SHARDED: "bench-big", ROOM_SHARDS: String(SHARDS), ROOM_SHARD_MAX_CONNECTIONS: String(SHARD_MAX) });
  const a = audience(edge, room);
  try {
    const steps: Step[] = [];
    let ratio = Number.NaN;
    let hotCpuPerS = Number.NaN;
    const sizes = [...new Set([...STEPS.filter((n) => n < CLIENTS), SINGLE_CLIENTS].sort((x, y) => x - y))];
    for (const n of sizes) {
      await a.traffic(false);
      await a.growTo(n, CONCURRENCY);
      await a.traffic(true);
      await sleep(WARM_S * 1000);
      const m = await measure(edge, room, a);
      steps.push(m.step);
      if (n !== SINGLE_CLIENTS) continue;
      // Same audience as the single room: the busiest object's share of all handler time, times workerd's CPU.
      const totalBusy = m.objects.reduce((sum, o) => sum + o.busyMs, 0);
      const hot = m.objects.reduce((x, o) => (o.busyMs > x.busyMs ? o : x));
      hotCpuPerS = (m.cpuS / m.seconds) * (hot.busyMs / totalBusy);
      ratio = hotCpuPerS / (single.cpuS / single.seconds);
      log(`big room, ${n} clients: busiest ${hot.name} ${((100 * hot.busyMs) / totalBusy).toFixed(1)}% of handler time -> ${hotCpuPerS.toFixed(3)} s/s (${ratio.toFixed(3)} x single)`);
    }

    await a.traffic(false);
    await a.growTo(CLIENTS, CONCURRENCY);
    await a.traffic(true);
    await sleep(WARM_S * 1000);
    // Count every message sent from here on, at every client.
    const firstId = Math.max(...(await a.report()).map((r) => r.chattersLastId)) + 1;
    await a.record(false, firstId);
    const full = await measure(edge, room, a);
    await a.traffic(false);
    // The last message sent: the chatters' own echoes tell its id once they arrive; then wait for everyone.
    await sleep(2000);
    const lastId = Math.max(...(await a.report()).map((r) => r.chattersLastId));
    const drainUntil = performance.now() + 15_000;
    let reports = await a.report();
    while (performance.now() < drainUntil && Math.min(...reports.map((r) => r.minLastId)) < lastId) {
      await sleep(200);
      reports = await a.report();
    }
    const expected = lastId - firstId + 1;
    const lost = expected * a.size - reports.reduce((n, r) => n + r.inRange, 0);
    const perS = (o: ObjectStats) => o.events / (o.sinceMs / 1000);
    const coordinator = full.objects.find((o) => o.kind === "coordinator")!;
    // The highest audience carried without queueing (the shards kept up with what was sent, and neither workerd nor
    // a client thread was near full): its latency is the design's, not a queue's.
    const carried = [...steps, full.step].filter((s) => s.handled_ratio >= KEPT_UP && s.workerd_cpu_s_per_s <= SATURATED && s.harness_elu <= SATURATED).at(-1);
    const result = {
      clients: a.size,
      shards: SHARDS,
      max_sockets_per_object: Math.max(...full.objects.map((o) => o.sockets)),
      max_events_per_s_per_object: round(Math.max(...full.objects.map(perS))),
      coordinator_events_per_s: round(perS(coordinator)),
      busiest_object_cpu_ratio_vs_single: round(ratio),
      lost,
      duplicated: reports.reduce((n, r) => n + r.duplicated, 0),
      reordered: reports.reduce((n, r) => n + r.reordered, 0),
      p99_ms: full.step.p99_ms,
      p50_ms: full.step.p50_ms,
      up_p99_ms: full.step.up_p99_ms,
      down_p99_ms: full.step.down_p99_ms,
      workerd_cpu_s_per_s_at_full: full.step.workerd_cpu_s_per_s,
      harness_elu_at_full: full.step.harness_elu,
      p99_ms_unsaturated: carried?.p99_ms ?? null,
      clients_unsaturated: carried?.clients ?? null,
      steps: [...steps, full.step],
      messages_checked: expected,
      deliveries: full.reports.reduce((n, r) => n + r.latencies.length, 0),
      single_room_cpu_s_per_s: round(single.cpuS / single.seconds),
      busiest_object_cpu_s_per_s: round(hotCpuPerS),
      client_threads: THREADS,
      workerd_fds: openFds(edge.workerdPids()),
      loadavg_1m: round(loadavg()[0]!),
    };
    log(`per object at ${a.size} clients: ${full.objects.map((o) => `${o.name.replace(`${room}/`, "")} ${o.sockets} sockets ${round(perS(o))} ev/s ${round(o.busyMs / (o.sinceMs / 1000))} ms/s`).join("; ")}`);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await a.close();
    await edge.stop();
    await sink.stop();
  }
}

if (isMainThread) main().then(
  () => process.exit(0),
  (error: unknown) => {
    log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
