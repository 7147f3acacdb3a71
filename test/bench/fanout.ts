// `npm run bench:fanout`: fan-out of one room on 127.0.0.1, edge vs a plain Node `ws` broadcast server.
//
//   1. burst:  one sender sends BENCH_BURST_MESSAGES chat messages as fast as the room takes them; every
//              delivery (message x client, batch frames unwrapped) is counted; deliveries/s until the last.
//   2. paced:  BENCH_PACED_RATE deliveries/s (10 msg/s to 1,000 clients) for BENCH_PACED_SECONDS;
//              latency from send to each receipt, p50/p99.
//   Both against the edge (BENCH_RUNTIME: bare Miniflare on the deploy bundle, or wrangler dev) and against
//   the baseline below (this same file, run as a child with --baseline-server so it gets its own process
//   like workerd does). Medians over BENCH_REPS repetitions, because the machine is noisy.
//   3. idle:   as many idle connections to one room as fit (BENCH_IDLE, time-boxed), then RSS per connection.
//
// stdout gets ONE JSON line; progress and per-repetition figures go to stderr.
//
// Settings (env, default):
//   BENCH_CLIENTS (1000)            receivers in the room, plus one sender
//   BENCH_RUNTIME (miniflare)       `miniflare` or `wrangler` (see lib/miniflare-edge.ts for why miniflare)
//   BENCH_REPS (3)                  repetitions of each measured case
//   BENCH_BURST_MESSAGES (500)      messages per burst (x clients = deliveries counted)
//   BENCH_PACED_RATE (10000)        deliveries/s in the paced case (messages/s = rate / clients)
//   BENCH_PACED_SECONDS (3)         length of each paced run
//   BENCH_IDLE (10000)              idle connections to try (capped by the open-files limit); 0 skips the phase
//   BENCH_IDLE_BUDGET_S (60)        time allowed for connecting them
//   BENCH_CONNECT_CONCURRENCY (50)  connects in flight at once
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:http";
import { performance } from "node:perf_hooks";
import WebSocket, { WebSocketServer } from "ws";
import { type EdgeServer, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import { type ConnectSpec, Fleet, openClient } from "./lib/fleet.ts";
import { type BenchEdge, startMiniflareEdge } from "./lib/miniflare-edge.ts";
import { cpuSeconds, openFds, rssMb, workerdPidsInGroup } from "./lib/proc-memory.ts";
import { median, percentile, round } from "./lib/stats.ts";

// ---------------------------------------------------------------------------------------------------------
// Baseline: a plain `ws` broadcast server speaking just enough of the room protocol (welcome, send ->
// message with an id and the sender's clientId, to everyone). No coalescing, no storage: the floor of
// what one Node process does on this machine.

function runBaselineServer(): void {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
  let id = 0;
  wss.on("connection", (ws) => {
    ws.send(JSON.stringify({ type: "welcome" }));
    ws.on("message", (data) => {
      const frame = JSON.parse(data.toString()) as { type?: string; text?: string; clientId?: string };
      if (frame.type !== "send") return;
      const text = JSON.stringify({ type: "message", message: { id: ++id, userId: "bench-sender", text: frame.text, at: Date.now() }, clientId: frame.clientId });
      for (const client of wss.clients) if (client.readyState === WebSocket.OPEN) client.send(text);
    });
  });
  wss.on("listening", () => {
    const address = wss.address();
    process.stdout.write(`LISTENING ${typeof address === "object" && address ? address.port : address}\n`);
  });
  process.on("SIGTERM", () => process.exit(0));
}

async function startBaseline(): Promise<{ wsUrl: string; child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [import.meta.filename, "--baseline-server"], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const m = /LISTENING (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once("exit", (code) => reject(new Error(`baseline server exited (${code}) before listening`)));
  });
  return {
    wsUrl: `ws://127.0.0.1:${port}`,
    child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Settings

function setting(name: string, fallback: number): number {
  const raw = process.env[name];
  const n = Number(raw);
  return raw !== undefined && raw !== "" && Number.isFinite(n) && n >= 0 ? n : fallback;
}

const CLIENTS = setting("BENCH_CLIENTS", 1000);
const REPS = Math.max(1, setting("BENCH_REPS", 3));
const BURST_MESSAGES = Math.max(1, setting("BENCH_BURST_MESSAGES", 500));
const PACED_RATE = Math.max(1, setting("BENCH_PACED_RATE", 10_000));
const PACED_SECONDS = Math.max(1, setting("BENCH_PACED_SECONDS", 3));
const IDLE_TARGET = setting("BENCH_IDLE", 10_000);
const IDLE_BUDGET_S = setting("BENCH_IDLE_BUDGET_S", 60);
const CONCURRENCY = Math.max(1, setting("BENCH_CONNECT_CONCURRENCY", 50));
const RUNTIME = process.env.BENCH_RUNTIME === "wrangler" ? "wrangler" : "miniflare";

const log = (message: string) => process.stderr.write(`[fanout] ${message}\n`);

/** What to stop if the bench is interrupted (Ctrl-C): servers run in their own process groups. */
const cleanups = new Set<() => Promise<void>>();
function stopOnSignals(): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping servers`);
      void Promise.allSettled([...cleanups].map((stop) => stop())).then(() => process.exit(130));
    });
  }
}

/**
 * Stands in for the HTTP->NATS bridge: the room forwards chat messages to the media side through the edge
 * outbox, and with no bridge the outbox would retry (and log) throughout the bench. Answers 204 to all.
 */
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
let bridgeSinkUrl = "";

// ---------------------------------------------------------------------------------------------------------
// One target (edge or baseline): a sender and CLIENTS receivers in one room

interface Target {
  name: string;
  /** connect spec of receiver i, or of the sender (i = -1) */
  spec(i: number): Promise<ConnectSpec>;
  /** CPU seconds the server has used so far (to tell the server's cost from the clients') */
  serverCpuS(): number;
}

/** CPU seconds this process (the clients) has used so far. */
const clientCpuS = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

interface CaseResults {
  deliveriesPerS: number[];
  p50: number[];
  p99: number[];
  connectS: number;
}

async function measure(target: Target): Promise<CaseResults> {
  const fleet = new Fleet();
  // Specs (tokens) first, so minting does not count as connect time.
  const specs = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => target.spec(i)));
  const t0 = performance.now();
  const joined = await fleet.connect(CLIENTS, (i) => specs[i]!, { concurrency: CONCURRENCY });
  const connectS = (performance.now() - t0) / 1000;
  if (joined.error) throw new Error(`${target.name}: only ${joined.connected}/${CLIENTS} clients connected: ${joined.error}`);
  log(`${target.name}: ${CLIENTS} clients connected in ${connectS.toFixed(1)} s`);
  const sender = await openClient(await target.spec(-1), () => {});
  let runNo = 0;
  const send = (tag: string, seq: number) => sender.send(JSON.stringify({ type: "send", text: `bench ${seq}`, clientId: `${tag}${seq}` }));

  try {
    // Warm-up, and a barrier: once every client has this message, everything queued before it (join
    // diffs of the connect phase) has been delivered too, so the runs measure only their own traffic.
    const warm = fleet.run("w_", CLIENTS * 5, 60_000);
    for (let i = 0; i < 5; i++) send("w_", i);
    const warmed = await warm.done;
    if (!warmed.complete) throw new Error(`${target.name}: warm-up delivered ${warmed.count}/${CLIENTS * 5}`);

    const results: CaseResults = { deliveriesPerS: [], p50: [], p99: [], connectS };
    for (let rep = 0; rep < REPS; rep++) {
      // burst
      const burstTag = `b${++runNo}_`;
      const expected = BURST_MESSAGES * CLIENTS;
      const burst = fleet.run(burstTag, expected, Math.max(60_000, (expected / 2_000) * 1000));
      const cpu0 = [target.serverCpuS(), clientCpuS()];
      const start = performance.now();
      for (let i = 0; i < BURST_MESSAGES; i++) send(burstTag, i);
      const b = await burst.done;
      const rate = b.count / ((fleet.lastDeliveryAt - start) / 1000);
      const burstCpu = [target.serverCpuS() - cpu0[0]!, clientCpuS() - cpu0[1]!];
      if (!b.complete) log(`${target.name}: burst ${rep + 1} INCOMPLETE: ${b.count}/${expected} deliveries`);
      results.deliveriesPerS.push(rate);

      // paced
      const pacedTag = `p${++runNo}_`;
      const perSecond = PACED_RATE / CLIENTS;
      const count = Math.max(1, Math.round(perSecond * PACED_SECONDS));
      const intervalMs = 1000 / perSecond;
      const sentAt = new Float64Array(count);
      const paced = fleet.run(pacedTag, count * CLIENTS, PACED_SECONDS * 1000 + 60_000, sentAt);
      const cpu1 = [target.serverCpuS(), clientCpuS()];
      const pacedStart = performance.now();
      for (let i = 0; i < count; i++) {
        // Pacing needs a clock, not an event: send message i at its slot, correcting for drift.
        const wait = pacedStart + i * intervalMs - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        sentAt[i] = performance.now();
        send(pacedTag, i);
      }
      const p = await paced.done;
      const pacedS = (performance.now() - pacedStart) / 1000;
      const pacedCpu = [(target.serverCpuS() - cpu1[0]!) / pacedS, (clientCpuS() - cpu1[1]!) / pacedS];
      if (!p.complete) log(`${target.name}: paced ${rep + 1} INCOMPLETE: ${p.count}/${count * CLIENTS} deliveries`);
      results.p50.push(percentile(fleet.latencies, 50));
      results.p99.push(percentile(fleet.latencies, 99));
      log(
        `${target.name} rep ${rep + 1}: burst ${Math.round(rate)} deliveries/s (${b.count}/${expected}; CPU server ${burstCpu[0]!.toFixed(2)} s, clients ${burstCpu[1]!.toFixed(2)} s); ` +
          `paced ${PACED_RATE}/s: p50 ${round(results.p50[rep]!)} ms, p99 ${round(results.p99[rep]!)} ms (${p.count}/${count * CLIENTS}; ` +
          `CPU server ${(pacedCpu[0]! * 100).toFixed(0)}%, clients ${(pacedCpu[1]! * 100).toFixed(0)}% of a core)`,
      );
    }
    return results;
  } finally {
    sender.close(1000, "bench done");
    await fleet.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// The edge

interface RunningEdge {
  wsUrl: string;
  workerdPids(): number[];
  rssMb(): number;
  stop(): Promise<void>;
}

async function startBenchEdge(vars: Record<string, string>): Promise<RunningEdge> {
  if (RUNTIME === "wrangler") {
    const edge: EdgeServer = await startEdge(vars);
    const pids = () => workerdPidsInGroup(edge.process.child.pid!);
    return { wsUrl: edge.wsUrl, workerdPids: pids, rssMb: () => rssMb(pids()), stop: () => edge.stop() };
  }
  const edge: BenchEdge = await startMiniflareEdge(vars);
  return { wsUrl: edge.wsUrl, workerdPids: () => edge.workerdPids(), rssMb: () => rssMb(edge.workerdPids()), stop: () => edge.stop() };
}

function edgeTarget(edge: RunningEdge, room: string, userFor: (i: number) => string): Target {
  return {
    name: `edge (${RUNTIME})`,
    serverCpuS: () => cpuSeconds(edge.workerdPids()),
    async spec(i) {
      const sender = i < 0;
      const token = await mintHs256(TEST_SECRETS.JWT_SECRET, { sub: sender ? "bench-sender" : userFor(i), claims: { role: sender ? "broadcaster" : "viewer" } });
      return { url: `${edge.wsUrl}/parties/room/${room}`, headers: { authorization: `Bearer ${token}` } };
    },
  };
}

/** The room's limits, lifted where they would cap the bench rather than measure the room. */
function benchVars(extra: Record<string, string> = {}): Record<string, string> {
  return {
    // The sender is one connection sending as fast as it can; the per-connection rate limit would refuse it.
    ROOM_RATE_PER_S: "1000000",
    ROOM_RATE_BURST: "1000000",
    ROOM_MAX_CONNECTIONS: String(Math.max(CLIENTS, IDLE_TARGET) + 100),
    // One object is what this bench measures: the room must not grow into a big room past ROOM_SHARD_AT.
    ROOM_SHARD_AT: "0",
    BRIDGE_URL: bridgeSinkUrl,
    ...extra,
  };
}

/**
 * Idle phase: as many idle connections to one room as fit in the time box, then RSS per connection.
 * Connections are spread over ~sqrt(N) users: the room's per-join work grows with the joining user's other
 * connections (counted for presence) and the welcome's presence list with the number of users, so sqrt(N)
 * keeps both small; what remains is the presence diff each join sends to everyone (see the report).
 * Returns how many connections the room held (all of them received one final broadcast) and KiB each.
 */
async function idlePhase(): Promise<{ held: number; kbPer: number; note?: string }> {
  const openFiles = Number(execFileSync("bash", ["-c", "ulimit -n"]).toString().trim());
  const target = Math.min(IDLE_TARGET, Number.isFinite(openFiles) ? openFiles - 500 : IDLE_TARGET);
  const users = Math.ceil(Math.sqrt(target));
  // Presence diffs (one per join) are coalesced per ROOM_FLUSH_MS window and sent to every connection:
  // at the default 10 ms and thousands of sockets that dominates the connect phase, which is not what this
  // phase measures, so the idle edge coalesces for 1 s.
  const edge = await startBenchEdge(benchVars({ ROOM_FLUSH_MS: "1000" }));
  cleanups.add(edge.stop);
  const fleet = new Fleet();
  try {
    const tokens = await Promise.all(
      Array.from({ length: users }, (_, u) => mintHs256(TEST_SECRETS.JWT_SECRET, { sub: `bench-idle-${u}`, claims: { role: "viewer" } })),
    );
    const url = `${edge.wsUrl}/parties/room/bench-idle`;
    const spec = (i: number) => ({ url, headers: { authorization: `Bearer ${tokens[i % users]}` } });
    const first = await fleet.connect(1, spec);
    if (first.error) throw new Error(`idle: first connection failed: ${first.error}`);
    const before = edge.rssMb();
    const t0 = performance.now();
    // Connects per second as the room fills show whether joining gets dearer with the room's size. The
    // runtime's open files are watched too: workerd exits when it cannot accept, taking the room with it.
    let mark = t0;
    const progress = (n: number): string | undefined => {
      if (n % 250 !== 0) return undefined;
      const fds = openFds(edge.workerdPids());
      if (n % 1000 === 0) {
        const now = performance.now();
        log(`idle: ${n} connected, last 1000 at ${Math.round(1000 / ((now - mark) / 1000))}/s, RSS ${edge.rssMb().toFixed(0)} MB, workerd fds ${fds}`);
        mark = now;
      }
      return fds > openFiles * 0.9 ? `workerd has ${fds} open files of its limit ${openFiles}` : undefined;
    };
    const got = await fleet.connect(target - 1, (i) => spec(i + 1), { concurrency: CONCURRENCY, stopAt: t0 + IDLE_BUDGET_S * 1000, onProgress: progress });
    const connected = fleet.sockets.length;
    log(`idle: ${connected}/${target} connected in ${((performance.now() - t0) / 1000).toFixed(1)} s${got.error ? ` (stopped: ${got.error})` : ""}`);
    // Held = still open and served: every one of them receives a broadcast sent now.
    const senderToken = await mintHs256(TEST_SECRETS.JWT_SECRET, { sub: "bench-sender", claims: { role: "broadcaster" } });
    const sender = await openClient({ url, headers: { authorization: `Bearer ${senderToken}` } }, () => {});
    const check = fleet.run("h_", connected, 120_000);
    sender.send(JSON.stringify({ type: "send", text: "still there?", clientId: "h_0" }));
    const held = (await check.done).count;
    const after = edge.rssMb();
    sender.close(1000, "bench done");
    const kbPer = ((after - before) * 1024) / Math.max(1, connected - 1);
    log(`idle: ${held} held; workerd RSS ${before.toFixed(0)} MB -> ${after.toFixed(0)} MB = ${kbPer.toFixed(0)} KiB per connection`);
    return got.error ? { held, kbPer, note: got.error } : { held, kbPer };
  } finally {
    await fleet.close();
    await edge.stop();
    cleanups.delete(edge.stop);
  }
}

async function main(): Promise<void> {
  stopOnSignals();
  const started = performance.now();
  const sink = await startBridgeSink();
  bridgeSinkUrl = sink.url;
  cleanups.add(sink.stop);
  log(`${CLIENTS} clients, ${REPS} reps, burst ${BURST_MESSAGES} msgs, paced ${PACED_RATE} deliveries/s x ${PACED_SECONDS} s, runtime ${RUNTIME}`);

  // Baseline first, while the machine is quiet of workerd.
  const baseline = await startBaseline();
  cleanups.add(baseline.stop);
  let baseResults: CaseResults;
  try {
    baseResults = await measure({ name: "baseline ws", spec: async () => ({ url: baseline.wsUrl }), serverCpuS: () => cpuSeconds([baseline.child.pid!]) });
  } finally {
    await baseline.stop();
    cleanups.delete(baseline.stop);
  }

  const edge = await startBenchEdge(benchVars());
  cleanups.add(edge.stop);
  let edgeResults: CaseResults;
  let roomRssMb = 0;
  try {
    const room = `bench-${Date.now().toString(36)}`;
    const target = edgeTarget(edge, room, (i) => `bench-user-${i}`);
    // RSS "with the room full": the highest reading while the clients are connected and the runs go on.
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, edge.rssMb())), 500);
    try {
      edgeResults = await measure(target);
    } finally {
      clearInterval(sampler);
    }
    roomRssMb = peak;
  } finally {
    await edge.stop();
    cleanups.delete(edge.stop);
  }

  // The idle phase probes the machine's limits: if it breaks, the fan-out figures above still stand.
  const idle = IDLE_TARGET > 0 ? await idlePhase().catch((error: unknown) => {
    log(`idle phase FAILED: ${error instanceof Error ? error.message : String(error)}`);
    return { held: Number.NaN, kbPer: Number.NaN };
  }) : { held: 0, kbPer: Number.NaN };
  await sink.stop();
  cleanups.delete(sink.stop);

  const deliveries = median(edgeResults.deliveriesPerS);
  const baselineDeliveries = median(baseResults.deliveriesPerS);
  log(`baseline: burst ${Math.round(baselineDeliveries)} deliveries/s, paced p50 ${round(median(baseResults.p50))} ms, p99 ${round(median(baseResults.p99))} ms`);
  log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  process.stdout.write(
    `${JSON.stringify({
      clients: CLIENTS,
      deliveries_per_s: Math.round(deliveries),
      p50_ms: round(median(edgeResults.p50)),
      p99_ms: round(median(edgeResults.p99)),
      baseline_deliveries_per_s: Math.round(baselineDeliveries),
      ratio: round(deliveries / baselineDeliveries),
      rss_mb: Math.round(roomRssMb),
      idle_connections: idle.held,
      kb_per_idle_connection: Math.round(idle.kbPer),
    })}\n`,
  );
}

if (process.argv.includes("--baseline-server")) runBaselineServer();
else
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      log(`FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      process.exit(1);
    },
  );
