// Media side -> edge, end to end with every real part: the media bus (outbox) -> nats-server (JetStream) ->
// the NATS -> HTTP bridge process(es) -> the edge's POST /hooks/events under wrangler dev -> room objects,
// which apply each event exactly once (AppliedLedger). Faults: the edge down for the whole burst, nats-server
// SIGKILLed mid-burst, a bridge replica SIGKILLed mid-delivery.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "nats";
import { afterEach, describe, expect, it } from "vitest";
import { makeEvent } from "../../shared/envelope.ts";
import { busConfig } from "../../media-node/src/bus/config.ts";
import { createMediaEventBus, type MediaEventBus } from "../../media-node/src/bus/event-bus.ts";
import { startNatsToHttpBridge } from "../helpers/bridges.ts";
import { type EdgeServer, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";
import { waitFor } from "../helpers/wait.ts";

interface IngressStats {
  since: string;
  applied: number;
  duplicates: number;
  appliedTwice: number;
  failed: number;
  rejected: Record<string, number>;
}

const firstSince = new Map<EdgeServer, string>();

/**
 * The edge's ingress counters. They live in the Worker isolate's memory: if wrangler dev reloads the Worker
 * (its sources changed under it), they restart from zero and the counts of this test mean nothing, so that
 * is reported as such instead of as lost events.
 */
async function edgeStats(edge: EdgeServer): Promise<IngressStats> {
  const res = await fetch(`${edge.url}/internal/bus/stats`, { headers: { authorization: `Bearer ${TEST_SECRETS.INTERNAL_API_TOKEN}` } });
  if (!res.ok) throw new Error(`stats: ${res.status} ${await res.text()}`);
  const stats = (await res.json()) as IngressStats;
  const since = firstSince.get(edge) ?? stats.since;
  firstSince.set(edge, since);
  if (stats.since !== since) throw new IsolateRestarted();
  return stats;
}

class IsolateRestarted extends Error {
  override message = "the edge's Worker isolate restarted during the test (wrangler dev reloaded changed sources): its in-memory counters were reset";
}

/** waitFor on the edge's counters, failing at once (not at the timeout) if they were reset. */
async function waitForEdge(what: string, check: (s: IngressStats) => boolean, timeoutMs: number, edge: EdgeServer) {
  let restarted: Error | undefined;
  await waitFor(what, async () => {
    try {
      return check(await edgeStats(edge));
    } catch (error) {
      if (error instanceof IsolateRestarted) return (restarted = error);
      throw error;
    }
  }, timeoutMs, 200);
  if (restarted) throw restarted;
}

/** A stream lifecycle event for one of `rooms` rooms, so the load spreads over several objects. */
const started = (n: number, rooms = 16) =>
  makeEvent(
    "stream.started",
    { streamId: `s${n % rooms}`, roomId: `bus-room-${n % rooms}`, nodeId: "node-test", app: "live", resumed: n >= rooms },
    { source: "media-node/node-test", subject: `stream/s${n % rooms}` },
  );

async function consumerIdle(nats: NatsServer): Promise<boolean> {
  const nc = await connect(nats.options());
  try {
    const info = await (await nc.jetstreamManager()).consumers.info("EVENTS", "edge-bridge");
    return info.num_pending === 0 && info.num_ack_pending === 0;
  } finally {
    await nc.close();
  }
}

describe("media side -> NATS -> bridge -> edge: every event takes effect exactly once", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  async function mediaBus(nats: NatsServer): Promise<MediaEventBus> {
    const dir = await mkdtemp(join(tmpdir(), "pulsecast-bus-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const bus = createMediaEventBus(busConfig({ ...nats.settings("media-node"), outboxDir: dir }), { name: "test-node", log: () => undefined });
    await bus.start();
    cleanups.push(() => bus.stop());
    return bus;
  }

  it("1,000 events published while the edge is down all take effect once it comes up", async () => {
    const nats = await startNats();
    cleanups.push(() => nats.stop());
    const edgePort = await freePort();
    const bridge = await startNatsToHttpBridge({ nats, edgeUrl: `http://127.0.0.1:${edgePort}/hooks/events`, env: { BRIDGE_RETRY_MAX_MS: "1000" } });
    cleanups.push(() => bridge.stop());
    const bus = await mediaBus(nats);

    const events = Array.from({ length: 1000 }, (_, i) => started(i));
    await Promise.all(events.map((e) => bus.publish(e)));
    await bus.drained(); // all 1,000 in JetStream
    // The bridge is trying and failing: nothing listens on the edge's port yet.
    await waitFor("the bridge retrying against the absent edge", async () => (await bridge.metric("pulsecast_bridge_retried_total")) > 0);
    expect(await bridge.metric("pulsecast_bridge_delivered_total")).toBe(0);

    const edge = await startEdge({}, { port: edgePort });
    cleanups.push(() => edge.stop());
    await waitForEdge("1,000 events applied at the edge", (s) => s.applied >= 1000, 180_000, edge);
    await waitFor("the bridge's consumer idle (all acked)", () => consumerIdle(nats), 30_000, 200);
    const stats = await edgeStats(edge);
    expect(stats.applied).toBe(1000);
    expect(stats.appliedTwice).toBe(0);
    expect(stats.rejected).toEqual({});
    expect(await bridge.metric("pulsecast_bridge_delivered_total")).toBe(1000);
    expect(await bridge.metric("pulsecast_bridge_dead_lettered_total")).toBe(0);
    // They went as batches (the default form) that the edge took as such: none refused whole and split.
    expect(await bridge.metric("pulsecast_bridge_batches_split_total")).toBe(0);
    // (Retries during the outage are jittered per event and mostly go alone; the backlog pulled after goes in
    // full batches, so the mean is well above one event per POST without being near 100.)
    const posts = await bridge.metric("pulsecast_bridge_batch_size_events_count");
    expect(await bridge.metric("pulsecast_bridge_batch_size_events_sum")).toBeGreaterThan(posts * 2);
  }, 300_000);

  it("loses nothing when nats-server is SIGKILLed mid-burst and a bridge replica is SIGKILLed mid-delivery; the edge absorbs the repeats", async () => {
    const [nats, edge] = await Promise.all([startNats(), startEdge()]);
    cleanups.push(() => nats.stop(), () => edge.stop());
    const env = { BRIDGE_ACK_WAIT_MS: "3000", BRIDGE_REQUEST_TIMEOUT_MS: "2000", BRIDGE_RETRY_MAX_MS: "1000", BRIDGE_CONCURRENCY: "32" };
    const edgeUrl = `${edge.url}/hooks/events`;
    const [a, b] = await Promise.all([startNatsToHttpBridge({ nats, edgeUrl, env }), startNatsToHttpBridge({ nats, edgeUrl, env })]);
    cleanups.push(() => a.stop(), () => b.stop());
    const bus = await mediaBus(nats);

    const total = 2000;
    const events = Array.from({ length: total }, (_, i) => started(i));
    const publishing = (async () => {
      for (let i = 0; i < total; i += 100) await Promise.all(events.slice(i, i + 100).map((e) => bus.publish(e)));
    })();

    await waitForEdge("first events applied", (s) => s.applied >= 300, 120_000, edge);
    await nats.restart({ hard: true });
    await waitForEdge("delivery resumed after the NATS restart", (s) => s.applied >= 800, 120_000, edge);
    // Replica A dies with deliveries in flight; they come back to B after the ack wait.
    await a.kill();
    await publishing;
    await bus.drained();
    await waitForEdge(`all ${total} applied`, (s) => s.applied >= total, 180_000, edge);
    await waitFor("the consumer idle (all acked)", () => consumerIdle(nats), 30_000, 200);

    const stats = await edgeStats(edge);
    expect(stats.applied).toBe(total);
    expect(stats.appliedTwice).toBe(0);
    expect(stats.rejected).toEqual({});
    expect(await b.metric("pulsecast_bridge_batches_split_total")).toBe(0);
    // Repeats happen (acks lost in the kill, in-flight posts of the dead replica) and are answered as duplicates.
    console.log(`faults: applied ${stats.applied}, duplicates absorbed ${stats.duplicates}`);
  }, 300_000);
});
