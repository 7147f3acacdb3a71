// `npm run bench:notify`: 10,000 notifications to 1,000 offline users, each with one push subscription, through
// the edge (the local Workers runtime, BENCH_RUNTIME) to a local Web Push service that checks VAPID and decrypts
// every payload; then an email phase through the bus, the notifier process and a real SMTP server. One JSON line:
//   {"notifications":10000,"push_per_s":…,"p99_ms":…,"lost":0,"duplicates":0,"email_per_s":…}
// push_per_s: notifications pushed per second (each counted at its first push the service decrypted), from the
// first notification posted to the last one pushed. p99_ms: from posting a notification to the edge to its push
// arriving. lost: notifications whose push never arrived (within BENCH_TIMEOUT_S); duplicates: pushes the service
// took for a notification it already had (the device's service worker would show them once; this counts the
// edge's resends). email_per_s: emails the SMTP server accepted per second for BENCH_EMAILS users with one
// emailed notification each.
// Targets: push_per_s >= 500 on 2 cores, lost 0, duplicates 0. Besides these the line carries push_cpu_s (CPU
// seconds every part of the run used in the push phase), push_cpu_s_by_part (edge runtime; this process, which is
// the driver and the push service; bridge; NATS) and push_per_s_2_cores_by_cpu (pushes / CPU second x 2): on a
// machine shared with other work, wall-clock rates measure the neighbours as much as the code.
//
// The notifications arrive as the bus delivers them: signed batches of 100 to POST /hooks/events, BENCH_BATCH_CONCURRENCY
// (4) at a time; the emails' notifications one by one through the internal API.
// Settings (env): BENCH_NOTIFICATIONS (10000), BENCH_USERS (1000), BENCH_CONCURRENCY (64 requests in flight),
// BENCH_EMAILS (500; 0 skips the email phase), BENCH_TIMEOUT_S (300), BENCH_RUNTIME (miniflare, or wrangler),
// BENCH_DO_STORAGE (tmpfs: the Durable Objects' SQLite files on /dev/shm; disk), BENCH_CPU_PROFILE (a file for the
// Worker's CPU profile of the push phase; Miniflare only).
import { join } from "node:path";
import { loadavg } from "node:os";
import { BATCH_CONTENT_TYPE, batchBody, newBatchId } from "../../shared/batch.ts";
import { type Envelope, makeEvent } from "../../shared/envelope.ts";
import { signWebhook } from "../../shared/signing/webhooks.ts";
import { generateVapidKeys } from "../../shared/vapid-keys.ts";
import { startHttpToNatsBridge } from "../helpers/bridges.ts";
import { ROOT, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import { startNats } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";
import { spawnGroup } from "../helpers/process.ts";
import { startPushService } from "../helpers/push-service.ts";
import { startSmtp } from "../helpers/smtp.ts";
import { waitFor } from "../helpers/wait.ts";
import { startMiniflareEdge } from "./lib/miniflare-edge.ts";
import { cpuByPart } from "./lib/proc-memory.ts";
import { writeFileSync } from "node:fs";
import { startProfiler, summarize } from "./lib/cpu-profile.ts";
import { percentile } from "./lib/stats.ts";

const N = Number(process.env.BENCH_NOTIFICATIONS ?? 10_000);
const USERS = Number(process.env.BENCH_USERS ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const BATCH_CONCURRENCY = Number(process.env.BENCH_BATCH_CONCURRENCY ?? 4);
const EMAILS = Number(process.env.BENCH_EMAILS ?? 500);
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_S ?? 300) * 1000;
const RUNTIME = process.env.BENCH_RUNTIME ?? "miniflare";
/** where the Durable Objects keep their SQLite: tmpfs (default) or disk (see lib/miniflare-edge.ts); Miniflare only */
const DO_STORAGE = process.env.BENCH_DO_STORAGE ?? "tmpfs";
/** a file to write the Worker's CPU profile of the push phase to (Miniflare only); its heaviest functions go to stderr */
const PROFILE = process.env.BENCH_CPU_PROFILE;
const log = (m: string) => process.stderr.write(`[bench:notify] ${m}\n`);

/** Runs `work(i)` for i in [0, n) with `limit` in flight. */
async function pool(n: number, limit: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, n) }, async () => {
    for (let i = next++; i < n; i = next++) await work(i);
  }));
}

const cleanups: (() => Promise<unknown>)[] = [];
async function main() {
  const vapid = await generateVapidKeys();
  const bridgePort = await freePort();
  const [nats, push, smtp] = await Promise.all([startNats(), startPushService(), startSmtp()]);
  cleanups.push(() => nats.stop(), () => push.stop(), () => smtp.stop());
  const bridge = await startHttpToNatsBridge({ nats, env: { HTTP_TO_NATS_PORT: String(bridgePort) } });
  cleanups.push(() => bridge.stop());
  const notifier = spawnGroup(process.execPath, [join(ROOT, "media-node/src/notify/main.ts")], {
    cwd: ROOT,
    env: { ...process.env, ...nats.env("notifier"), SMTP_HOST: "127.0.0.1", SMTP_PORT: String(smtp.port), SMTP_REQUIRE_TLS: "false", NOTIFIER_CONCURRENCY: "64" },
  });
  cleanups.push(() => notifier.stop());
  await notifier.waitForOutput(/\bready: consumer\b/, 30_000);
  const vars = {
    BRIDGE_URL: `http://127.0.0.1:${bridgePort}/events`,
    VAPID_PUBLIC_KEY: vapid.publicKey,
    VAPID_PRIVATE_KEY: vapid.privateKey,
    EDGE_PUBLIC_URL: "http://127.0.0.1:8787",
    UNSUBSCRIBE_SECRET: "bench-unsubscribe-secret-0123456789abcdef",
    NOTIFY_EMAIL_DELAY_MS: "0",
    NOTIFY_EMAIL_MIN_INTERVAL_MS: "0",
  };
  const inspectorPort = PROFILE ? await freePort() : undefined;
  const edge = RUNTIME === "wrangler" ? await startEdge(vars) : await startMiniflareEdge(vars, { inspectorPort, tmpfsStorage: DO_STORAGE === "tmpfs" });
  cleanups.push(() => edge.stop());

  const api = async (userId: string, method: string, path: string, body: unknown) => {
    const res = await fetch(`${edge.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${await mintHs256(TEST_SECRETS.JWT_SECRET, { sub: userId })}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  };
  const request = (userId: string, notificationId: string, title: string) =>
    makeEvent("notification.requested", { notificationId, userId, title, kind: "media.ready", url: "https://app.pulsecast.test/v/1" }, { source: "bench", subject: `user/${userId}` });
  /** As the NATS -> HTTP bridge delivers: signed batches of up to 100 events to /hooks/events. */
  const postBatch = async (events: Envelope[]) => {
    const body = batchBody(events);
    const res = await fetch(`${edge.url}/hooks/events`, {
      method: "POST",
      headers: { "content-type": BATCH_CONTENT_TYPE, ...(await signWebhook(TEST_SECRETS.EDGE_INGRESS_SECRET, newBatchId(), body)) },
      body,
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`batch: ${res.status} ${text.slice(0, 300)}`);
    const results = (JSON.parse(text) as { results: { status: string; message?: string }[] }).results;
    const bad = results.filter((r) => r.status !== "applied");
    if (bad.length) throw new Error(`batch: ${bad.length} not applied, e.g. ${JSON.stringify(bad[0])}`);
  };
  const post = async (userId: string, notificationId: string, title: string) => {
    const event = request(userId, notificationId, title);
    const res = await fetch(`${edge.url}/internal/users/${userId}/notifications`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_SECRETS.INTERNAL_API_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(event),
    });
    if (!res.ok) throw new Error(`notify ${userId}: ${res.status} ${await res.text()}`);
    await res.body?.cancel();
  };

  // ---- push phase ----------------------------------------------------------------------------------
  log(`subscribing ${USERS} users`);
  const hashOf = new Map<string, string>();
  await pool(USERS, CONCURRENCY, async (u) => {
    const { hash, ...sub } = await push.subscribe(vapid.publicKey);
    await api(`bench-${u}`, "POST", "/push/subscriptions", sub);
    hashOf.set(`bench-${u}`, hash);
  });
  log(`posting ${N} notifications`);
  const progress = setInterval(() => {
    const statuses: Record<number, number> = {};
    for (const a of push.answers) statuses[a.status] = (statuses[a.status] ?? 0) + 1;
    log(`pushes received ${push.received.length}, answers ${JSON.stringify(statuses)}, mails ${smtp.messages.length}`);
  }, 5000);
  cleanups.push(async () => clearInterval(progress));
  const postedAt = new Map<string, number>();
  const started = performance.now() + performance.timeOrigin;
  const pushCpu = cpuByPart((pid, cmd) =>
    pid === process.pid ? "driver_and_push_service" : /workerd/.test(cmd) ? "edge" : /http-to-nats/.test(cmd) ? "bridge" : /nats-server/.test(cmd) ? "nats" : "other",
  );
  const profiler = inspectorPort !== undefined ? await startProfiler(inspectorPort, "pulsecast-edge") : null;
  const BATCH = 100;
  await pool(Math.ceil(N / BATCH), BATCH_CONCURRENCY, async (b) => {
    const events: Envelope[] = [];
    const now = Date.now();
    for (let i = b * BATCH; i < Math.min(N, (b + 1) * BATCH); i++) {
      events.push(request(`bench-${i % USERS}`, `bn-${i}`, `Video ${i} is ready`));
      postedAt.set(`bn-${i}`, now);
    }
    await postBatch(events);
  });
  log(`posted in ${Math.round(Date.now() - started)} ms; waiting for the pushes`);
  // Each notification's pushes as the push service decrypted them, read incrementally (the wait polls often).
  const firstAt = new Map<string, number>();
  let copies = 0;
  let read = 0;
  const readPushes = () => {
    for (; read < push.received.length; read++) {
      const p = push.received[read]!;
      const id = (JSON.parse(p.payload) as { id: string }).id;
      if (firstAt.has(id)) copies++;
      else firstAt.set(id, p.at);
    }
    return firstAt.size;
  };
  await waitFor("every push", () => readPushes() >= N, TIMEOUT_MS, 250).catch(() => log(`timed out with ${firstAt.size} of ${N} notifications pushed`));
  readPushes();
  if (profiler && PROFILE) {
    const profile = await profiler.stop();
    writeFileSync(PROFILE, JSON.stringify(profile));
    log(`Worker CPU profile of the push phase in ${PROFILE}; heaviest by self time:\n${summarize(profile).join("\n")}`);
  }
  // CPU every part of the run used (edge runtime, push service, bridge, NATS, this driver) for the push phase:
  // on a shared machine the wall-clock rate says more about the neighbours than about the code.
  const cpuUsedByPart = pushCpu();
  const cpuUsed = Object.values(cpuUsedByPart).reduce((a, b) => a + b, 0);
  /** CPU seconds of the push phase by part: the edge runtime, this process (driver and push service), the rest */
  const cpuByPartRounded = Object.fromEntries(Object.entries(cpuUsedByPart).map(([part, s]) => [part, Math.round(s * 10) / 10]));
  // the rate counts each notification once, at its first push
  const lastAt = Math.max(...firstAt.values());
  const latencies = [...firstAt].map(([id, at]) => at - postedAt.get(id)!).sort((a, b) => a - b);
  const pushPerS = firstAt.size / ((lastAt - started) / 1000);

  // ---- email phase ---------------------------------------------------------------------------------
  let emailPerS: number | null = null;
  let emailLost = 0;
  if (EMAILS > 0) {
    log(`email phase: ${EMAILS} users`);
    await pool(EMAILS, CONCURRENCY, (u) => api(`mail-${u}`, "PUT", "/notifications/preferences", { email: `mail-${u}@bench.test`, defaults: { push: false, email: true } }));
    const mailStart = Date.now();
    await pool(EMAILS, CONCURRENCY, (u) => post(`mail-${u}`, `bm-${u}`, `Mail ${u}`));
    await waitFor("every email", () => smtp.messages.length >= EMAILS, TIMEOUT_MS, 100).catch(() => log(`timed out with ${smtp.messages.length} of ${EMAILS} emails`));
    emailPerS = Math.round((smtp.messages.length / ((Date.now() - mailStart) / 1000)) * 10) / 10;
    emailLost = EMAILS - new Set(smtp.messages.map((m) => m.subject)).size;
  }

  const line = {
    notifications: N,
    push_per_s: Math.round(pushPerS * 10) / 10,
    p99_ms: percentile(latencies, 99),
    lost: N - firstAt.size,
    duplicates: copies,
    email_per_s: emailPerS,
    p50_ms: percentile(latencies, 50),
    users: USERS,
    emails: EMAILS,
    email_lost: emailLost,
    runtime: RUNTIME,
    ...(RUNTIME !== "wrangler" && { do_storage: DO_STORAGE }),
    load_avg_1m: Math.round(loadavg()[0]! * 100) / 100,
    push_cpu_s: Math.round(cpuUsed * 10) / 10,
    push_cpu_s_by_part: cpuByPartRounded,
    /** pushes per second two dedicated cores would sustain at the CPU this run used per push (all parts counted) */
    push_per_s_2_cores_by_cpu: Math.round((firstAt.size / cpuUsed) * 2),
  };
  console.log(JSON.stringify(line));
}

try {
  await main();
} finally {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
}
process.exit(0);
