// `npm run bench:bigroom`: what a big room (shards + coordinator) carries over to production, measured on one
// machine: the load on the busiest object, against the single room at the same audience.
//
// Local workerd runs every object on one thread, so total throughput here cannot beat the single room; what
// transfers is per-object load (sockets, incoming events/s, CPU of the busiest object) and correctness.
//
//   1. single: one small room, BENCH_SINGLE_CLIENTS (4,000) clients; workerd CPU over the window is the room's
//      (the front Worker is idle once everyone is connected).
//   2. big, same audience: the same clients in a big room of BENCH_SHARDS (8) shards (latency recorded too).
//      Each object times its handlers (performance.now() around every handler; the internal stats route reads
//      them); the busiest object's share of all handler time, times workerd's CPU over the window, is its CPU.
//      Ratio vs 1.
//   3. big, full: BENCH_CLIENTS (8,000) clients: sockets and incoming events/s per object, the coordinator's
//      events/s, and every chat message checked at every client: lost, duplicated, reordered; latency send ->
//      receipt (p99, one clock: sender and receivers are this process).
// Workload everywhere: all clients but BENCH_CHATTERS (10) react once a second (random phase); the chatters
// (role member) send one chat message a second each, staggered: 10 messages/s.
//
// stdout gets ONE JSON line; progress goes to stderr. Bounded in time (BENCH_BUDGET_S) and stops itself;
// traffic only on 127.0.0.1.
import { execFileSync, spawnSync } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:http";
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import type WebSocket from "ws";
import { TEST_SECRETS } from "../helpers/edge.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import { openClient } from "./lib/fleet.ts";
import { type BenchEdge, startMiniflareEdge } from "./lib/miniflare-edge.ts";
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

// ---------------------------------------------------------------------------------------------------------
// Clients: each counts the chat message ids it gets (in order, once) and the latency of each.

const MSG_KEY = '"message":{"id":';
const TEXT_KEY = '"text":"b ';

class Client {
  ws!: WebSocket;
  lastId = 0;
  duplicated = 0;
  reordered = 0;
  /** distinct in-order ids received within [countFrom, countTo] */
  inRange = 0;
  private readonly stats: RunStats;
  constructor(stats: RunStats) {
    this.stats = stats;
  }

  readonly onFrame = (text: string): void => {
    let i = text.indexOf(MSG_KEY);
    if (i < 0) return;
    const now = performance.now();
    while (i >= 0) {
      i += MSG_KEY.length;
      let id = 0;
      while (text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) id = id * 10 + text.charCodeAt(i++) - 48;
      if (id === this.lastId) this.duplicated++;
      else if (id < this.lastId) this.reordered++;
      else {
        this.lastId = id;
        const s = this.stats;
        if (id >= s.countFrom && id <= s.countTo) this.inRange++;
        const t = text.indexOf(TEXT_KEY, i);
        if (t > 0 && s.recording) s.latencies.push(now - Number.parseFloat(text.slice(t + TEXT_KEY.length, text.indexOf('"', t + TEXT_KEY.length))));
      }
      i = text.indexOf(MSG_KEY, i);
    }
  };
}

interface RunStats {
  countFrom: number;
  countTo: number;
  recording: boolean;
  latencies: number[];
}

interface Audience {
  clients: Client[];
  chatters: Client[];
  stopTraffic(): void;
}

/** Connects `n` clients to `room` (the first CHATTERS as chatting members), starting at user index `offset`. */
async function connect(edge: BenchEdge, room: string, n: number, offset: number, stats: RunStats, into: Audience): Promise<void> {
  const specs = await Promise.all(
    Array.from({ length: n }, async (_, k) => {
      const i = offset + k;
      const chatter = i < CHATTERS;
      const token = await mintHs256(TEST_SECRETS.JWT_SECRET, { sub: `${chatter ? "chat" : "viewer"}-${i}`, claims: { role: chatter ? "member" : "viewer" } });
      return { chatter, spec: { url: `${edge.wsUrl}/parties/room/${room}`, headers: { authorization: `Bearer ${token}` } } };
    }),
  );
  let next = 0;
  let failure: string | undefined;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < specs.length && !failure) {
        const { chatter, spec } = specs[next++]!;
        const c = new Client(stats);
        try {
          c.ws = await openClient(spec, c.onFrame, 60_000);
        } catch (e) {
          failure ??= (e as Error).message;
          continue;
        }
        into.clients.push(c);
        if (chatter) into.chatters.push(c);
      }
    }),
  );
  if (failure) throw new Error(`${room}: connecting stopped at ${into.clients.length} clients: ${failure}`);
  log(`${room}: ${into.clients.length} clients connected (${n} in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

/** Reactions once a second per non-chatter (random phase), chat from each chatter once a second (staggered). */
function startTraffic(a: Audience): () => void {
  const timers: ReturnType<typeof setInterval>[] = [];
  const react = JSON.stringify({ type: "react", emoji: "🔥" });
  // Reactors in 20 groups, one group every 50 ms: 1/s each without a timer per socket.
  const reactors = a.clients.filter((c) => !a.chatters.includes(c));
  let tick = 0;
  timers.push(
    setInterval(() => {
      const g = tick++ % 20;
      for (let i = g; i < reactors.length; i += 20) reactors[i]!.ws.send(react);
    }, 50),
  );
  a.chatters.forEach((c, k) => {
    const start = setTimeout(() => {
      const send = () => c.ws.send(JSON.stringify({ type: "send", text: `b ${performance.now()}` }));
      send();
      timers.push(setInterval(send, 1000));
    }, (k * 1000) / Math.max(1, a.chatters.length));
    timers.push(start as unknown as ReturnType<typeof setInterval>);
  });
  return () => timers.forEach((t) => clearInterval(t));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function closeAll(clients: Client[]): Promise<void> {
  for (const c of clients) {
    try {
      c.ws.close(1000, "bench done");
    } catch {
      // closing
    }
  }
  await sleep(1000);
  for (const c of clients) c.ws.terminate();
}

interface ObjectStats {
  name: string;
  kind: string;
  sockets: number;
  events: number;
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

async function main(): Promise<void> {
  ensureOpenFiles();
  const deadline = setTimeout(() => {
    log(`time budget of ${BUDGET_S} s exceeded: stopping`);
    process.exit(2);
  }, BUDGET_S * 1000);
  deadline.unref();
  const sink = await startBridgeSink();
  const baseVars = { BRIDGE_URL: sink.url, ROOM_MAX_CONNECTIONS: String(SINGLE_CLIENTS + 100) };

  // 1. The single room. Its join diffs go to every socket; a 100 ms window (instead of 10) keeps connecting 4,000
  // clients from taking minutes. At 10 chat messages/s spaced 100 ms apart each flush still carries about one
  // message, so the steady state it is measured in sends the same frames per socket.
  let single: { cpuS: number; seconds: number };
  {
    const edge = await startMiniflareEdge({ ...baseVars, ROOM_FLUSH_MS: "100" });
    const stats: RunStats = { countFrom: 0, countTo: 0, recording: false, latencies: [] };
    const a: Audience = { clients: [], chatters: [], stopTraffic: () => {} };
    try {
      await connect(edge, "bench-single", SINGLE_CLIENTS, 0, stats, a);
      a.stopTraffic = startTraffic(a);
      await sleep(WARM_S * 1000);
      single = await window(edge, null);
      log(`single room, ${SINGLE_CLIENTS} clients: workerd CPU ${(single.cpuS / single.seconds).toFixed(3)} s/s`);
    } finally {
      a.stopTraffic();
      await closeAll(a.clients);
      await edge.stop();
    }
  }

  // 2 and 3. The big room.
  const room = "bench-big";
  const edge = await startMiniflareEdge({ ...baseVars, ROOM_SHARDED: "bench-big", ROOM_SHARDS: String(SHARDS), ROOM_SHARD_MAX_CONNECTIONS: String(SHARD_MAX) });
  const stats: RunStats = { countFrom: 0, countTo: 0, recording: false, latencies: [] };
  const a: Audience = { clients: [], chatters: [], stopTraffic: () => {} };
  try {
    await connect(edge, room, SINGLE_CLIENTS, 0, stats, a);
    a.stopTraffic = startTraffic(a);
    await sleep(WARM_S * 1000);
    stats.recording = true;
    const same = await window(edge, room);
    stats.recording = false;
    const sameLatencies = stats.latencies;
    stats.latencies = [];
    const samePerS = Math.max(...same.objects.filter((o) => o.kind === "shard").map((o) => o.events / (o.sinceMs / 1000)));
    const busiest = (objs: ObjectStats[]) => objs.reduce((m, o) => (o.busyMs > m.busyMs ? o : m));
    const totalBusy = same.objects.reduce((s, o) => s + o.busyMs, 0);
    const hot = busiest(same.objects);
    const hotCpuPerS = (same.cpuS / same.seconds) * (hot.busyMs / totalBusy);
    const ratio = hotCpuPerS / (single.cpuS / single.seconds);
    log(`big room, ${SINGLE_CLIENTS} clients: p50 ${round(percentile(sameLatencies, 50))} ms, p99 ${round(percentile(sameLatencies, 99))} ms; busiest shard ${round(samePerS)} events/s`);
    log(`big room, ${SINGLE_CLIENTS} clients: workerd CPU ${(same.cpuS / same.seconds).toFixed(3)} s/s; busiest ${hot.name} ${((100 * hot.busyMs) / totalBusy).toFixed(1)}% of handler time -> ${hotCpuPerS.toFixed(3)} s/s (${ratio.toFixed(3)} x single)`);

    a.stopTraffic();
    await connect(edge, room, CLIENTS - SINGLE_CLIENTS, SINGLE_CLIENTS, stats, a);
    a.stopTraffic = startTraffic(a);
    await sleep(WARM_S * 1000);
    // Count every message sent from here on, at every client; latency of each receipt.
    const firstId = Math.max(...a.clients.map((c) => c.lastId)) + 1;
    stats.countFrom = firstId;
    stats.countTo = Number.MAX_SAFE_INTEGER;
    for (const c of a.clients) {
      c.duplicated = 0;
      c.reordered = 0;
      c.inRange = 0;
    }
    stats.recording = true;
    const clientCpu0 = process.cpuUsage();
    const full = await window(edge, room);
    const clientCpu = process.cpuUsage(clientCpu0);
    a.stopTraffic();
    // The last message sent: the chatters' own echoes tell its id once they arrive.
    await sleep(2000);
    const lastId = Math.max(...a.chatters.map((c) => c.lastId));
    stats.countTo = lastId;
    const drainUntil = performance.now() + 15_000;
    while (performance.now() < drainUntil && a.clients.some((c) => c.lastId < lastId)) await sleep(200);
    stats.recording = false;
    const expected = lastId - firstId + 1;
    let lost = 0;
    for (const c of a.clients) lost += Math.max(0, expected - c.inRange);
    const duplicated = a.clients.reduce((s, c) => s + c.duplicated, 0);
    const reordered = a.clients.reduce((s, c) => s + c.reordered, 0);
    const perS = (o: ObjectStats) => o.events / (o.sinceMs / 1000);
    const coordinator = full.objects.find((o) => o.kind === "coordinator")!;
    const result = {
      clients: a.clients.length,
      shards: SHARDS,
      max_sockets_per_object: Math.max(...full.objects.map((o) => o.sockets)),
      max_events_per_s_per_object: round(Math.max(...full.objects.map(perS))),
      coordinator_events_per_s: round(perS(coordinator)),
      busiest_object_cpu_ratio_vs_single: round(ratio),
      lost,
      duplicated,
      reordered,
      p99_ms: round(percentile(stats.latencies, 99)),
      p50_ms: round(percentile(stats.latencies, 50)),
      p99_ms_at_single_clients: round(percentile(sameLatencies, 99)),
      p50_ms_at_single_clients: round(percentile(sameLatencies, 50)),
      messages_checked: expected,
      deliveries: stats.latencies.length,
      single_room_cpu_s_per_s: round(single.cpuS / single.seconds),
      busiest_object_cpu_s_per_s: round(hotCpuPerS),
      workerd_cpu_s_per_s_at_full: round(full.cpuS / full.seconds),
      clients_cpu_s_per_s: round((clientCpu.user + clientCpu.system) / 1e6 / full.seconds),
      workerd_fds: openFds(edge.workerdPids()),
      loadavg_1m: round(loadavg()[0]!),
    };
    log(`per object at ${a.clients.length} clients: ${full.objects.map((o) => `${o.name.replace(`${room}/`, "")} ${o.sockets} sockets ${round(perS(o))} ev/s ${round(o.busyMs / (o.sinceMs / 1000))} ms/s`).join("; ")}`);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    a.stopTraffic();
    await closeAll(a.clients);
    await edge.stop();
    await sink.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
