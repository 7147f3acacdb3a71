// The NATS -> HTTP bridge as a real process, between a real nats-server and a scripted signed receiver:
// retries, dead letters, loop guard, a replica killed mid-delivery, metrics — in both wire forms (batches, the
// default, and BRIDGE_BATCH_MAX=1, today's one event per request) — and what it does with per-event batch
// results and whole-batch refusals.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "nats";
import { afterEach, describe, expect, it } from "vitest";
import { type Envelope, makeEvent } from "../../shared/envelope.ts";
import { busConfig } from "../../media-node/src/bus/config.ts";
import { createMediaEventBus, type MediaEventBus } from "../../media-node/src/bus/event-bus.ts";
import { DEAD_LETTER_HEADERS } from "../../media-node/src/bus/subjects.ts";
import { listDeadLetters, redriveDeadLetters } from "../../media-node/src/bridges/dead-letters/dead-letters.ts";
import { startNatsToHttpBridge } from "../helpers/bridges.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";
import { waitFor } from "../helpers/wait.ts";
import { type BatchScript, type Script, startReceiver } from "./receiver.ts";

const progress = (n: number, source = "media-node/test") =>
  makeEvent("media.progress", { mediaId: `med_${n}`, ownerId: "u1", stage: "transcode", percent: n % 101 }, { source, subject: `media/med_${n}` });

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/**
 * nats-server, the scripted receiver, a media bus and one bridge. `before` events are published and in
 * JetStream before the bridge starts, so the bridge finds them all ready at once (what fills batches).
 */
async function setup(script: Script, bridgeEnv: Record<string, string> = {}, opts: { before?: Envelope[]; batchScript?: BatchScript } = {}) {
  const nats = await startNats();
  cleanups.push(() => nats.stop());
  const receiver = await startReceiver(await freePort(), script, opts.batchScript);
  cleanups.push(() => receiver.close());
  const dir = await mkdtemp(join(tmpdir(), "pulsecast-n2h-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const bus: MediaEventBus = createMediaEventBus(busConfig({ ...nats.settings("media-node"), outboxDir: dir }), { name: "test", log: () => undefined });
  await bus.start();
  cleanups.push(() => bus.stop());
  if (opts.before) {
    for (const e of opts.before) await bus.publish(e);
    await bus.drained();
  }
  const bridge = await startNatsToHttpBridge({ nats, edgeUrl: receiver.url, env: { BRIDGE_RETRY_BASE_MS: "20", ...bridgeEnv } });
  cleanups.push(() => bridge.stop());
  return { nats, receiver, bus, bridge };
}

async function consumerState(nats: NatsServer) {
  const nc = await connect(nats.options());
  try {
    return await (await nc.jetstreamManager()).consumers.info("EVENTS", "edge-bridge");
  } finally {
    await nc.close();
  }
}

async function deadLetter(nats: NatsServer, type: string) {
  const nc = await connect(nats.options());
  cleanups.push(() => nc.close());
  return (await nc.jetstreamManager()).streams.getMessage("DEADLETTER", { last_by_subj: `deadletter.${type}` });
}

const allAcked = (nats: NatsServer) =>
  waitFor("everything acked", async () => {
    const info = await consumerState(nats);
    return info.num_pending === 0 && info.num_ack_pending === 0;
  });

const modes = [
  { name: "batches (default)", env: {} as Record<string, string>, batched: true },
  { name: "one event per request (BRIDGE_BATCH_MAX=1)", env: { BRIDGE_BATCH_MAX: "1" } as Record<string, string>, batched: false },
];

describe.each(modes)("NATS -> HTTP bridge, $name (real nats-server, bridge process, signed receiver)", ({ env: modeEnv, batched }) => {
  const setupMode = (script: Script, bridgeEnv: Record<string, string> = {}, opts: { before?: Envelope[] } = {}) => setup(script, { ...modeEnv, ...bridgeEnv }, opts);
  /** the wire form was the one this mode promises */
  const expectForm = (receiver: { batches: number[]; singles: number }) => {
    if (batched) expect(Math.max(0, ...receiver.batches)).toBeGreaterThan(1);
    else expect(receiver.batches).toEqual([]);
  };

  it("delivers every event signed, retrying 5xx and timeouts with backoff until the edge takes it", async () => {
    // Every third event fails twice (503, then a 429 with Retry-After), then succeeds.
    const events = Array.from({ length: 60 }, (_, i) => progress(i));
    const flaky = new Set(events.filter((_, i) => i % 3 === 0).map((e) => e.id));
    const { receiver, bridge } = await setupMode((e, attempt) => (flaky.has(e.id) && attempt <= 2 ? (attempt === 1 ? 503 : 429) : 200), {}, { before: events });
    await receiver.waitForAccepted(60);
    expectForm(receiver);
    expect(new Set(receiver.accepted)).toEqual(new Set(events.map((e) => e.id)));
    expect(receiver.unsigned).toBe(0);
    await waitFor("delivered metric at 60", async () => (await bridge.metric("pulsecast_bridge_delivered_total")) === 60);
    expect(await bridge.metric("pulsecast_bridge_retried_total")).toBe(40);
    expect(await bridge.metric("pulsecast_bridge_dead_lettered_total")).toBe(0);
  });

  it("moves an event the edge refuses for good (4xx) to deadletter.<type> with the reason, and acks it", async () => {
    const poison = progress(13);
    let edgeFixed = false;
    const events = [progress(1), poison, progress(2)];
    const { nats, receiver, bridge } = await setupMode((e) => (e.id === poison.id && !edgeFixed ? 422 : 200), {}, { before: events });
    await receiver.waitForAccepted(2);
    expectForm(receiver);
    await waitFor("dead-letter metric", async () => (await bridge.metric("pulsecast_bridge_dead_lettered_total")) === 1);

    const nc = await connect(nats.options());
    cleanups.push(() => nc.close());
    const jsm = await nc.jetstreamManager();
    const dl = await jsm.streams.getMessage("DEADLETTER", { last_by_subj: "deadletter.media.progress" });
    expect(dl.json<Envelope>().id).toBe(poison.id);
    // Alone, the event's own status is the reason; in a batch, the edge's per-event code and message are.
    expect(dl.header.get(DEAD_LETTER_HEADERS.reason)).toMatch(batched ? /^edge rejected it in a batch: http_422: scripted 422/ : /^edge refused it with 422/);
    expect(dl.header.get(DEAD_LETTER_HEADERS.status)).toBe(batched ? "" : "422");
    expect(dl.header.get(DEAD_LETTER_HEADERS.subject)).toBe("media.progress");
    expect(receiver.deliveries.get(poison.id)).toBe(1); // not retried
    await waitFor("everything acked", async () => {
      const info = await consumerState(nats);
      return info.num_pending === 0 && info.num_ack_pending === 0;
    });

    // The operator fixes the edge and redrives: the event goes through the bridge again and leaves the stream.
    const [letter] = await listDeadLetters(jsm, "DEADLETTER");
    expect(letter?.letter).toMatchObject({ id: poison.id, originalSubject: "media.progress", ...(batched ? {} : { status: 422 }) });
    edgeFixed = true;
    const redriven = await redriveDeadLetters(nc.jetstream(), jsm, "DEADLETTER");
    expect(redriven.map((l) => l.id)).toEqual([poison.id]);
    await receiver.waitForAccepted(3);
    expect(receiver.accepted).toContain(poison.id);
    expect(await listDeadLetters(jsm, "DEADLETTER")).toEqual([]);
  });

  it("does not send events that came from the edge back to it", async () => {
    const { receiver, bus, bridge } = await setupMode(() => 200);
    const fromEdge = progress(1, "edge");
    const fromNode = progress(2);
    await bus.publish(fromEdge);
    await bus.publish(fromNode);
    await receiver.waitForAccepted(1);
    await waitFor("skipped metric", async () => (await bridge.metric("pulsecast_bridge_skipped_total")) === 1);
    expect(receiver.deliveries.has(fromEdge.id)).toBe(false);
    expect(receiver.accepted).toEqual([fromNode.id]);
  });

  it("redelivers to another replica the events a killed replica was posting; none lost", async () => {
    let hang = true;
    const { nats, receiver, bus, bridge } = await setupMode(() => (hang ? "hang" : 200), {
      BRIDGE_ACK_WAIT_MS: "2000",
      BRIDGE_REQUEST_TIMEOUT_MS: "1500",
      BRIDGE_CONCURRENCY: "8",
    });
    const events = Array.from({ length: 20 }, (_, i) => progress(i));
    for (const e of events) await bus.publish(e);
    // Eight deliveries in progress (the concurrency bound), none answered: kill the replica in the middle.
    await receiver.waitForHanging(8);
    await bridge.kill();
    hang = false;
    const replica = await startNatsToHttpBridge({ nats, edgeUrl: receiver.url, env: { BRIDGE_ACK_WAIT_MS: "2000", BRIDGE_REQUEST_TIMEOUT_MS: "1500" } });
    cleanups.push(() => replica.stop());
    await receiver.waitForAccepted(20);
    expect(new Set(receiver.accepted)).toEqual(new Set(events.map((e) => e.id)));
    // The ones in flight at the kill were delivered again (the edge's ledger makes that harmless).
    expect([...receiver.deliveries.values()].filter((n) => n > 1).length).toBeGreaterThanOrEqual(8);
  });

  it("never has more events in flight than its concurrency", async () => {
    const { receiver, bus, bridge } = await setupMode(() => "hang", { BRIDGE_CONCURRENCY: "4", BRIDGE_REQUEST_TIMEOUT_MS: "20000" });
    for (let i = 0; i < 12; i++) await bus.publish(progress(i));
    await receiver.waitForHanging(4);
    await waitFor("lag reported", async () => (await bridge.metric("pulsecast_bridge_lag_events")) === 8, 10_000);
    expect(await bridge.metric("pulsecast_bridge_in_flight_events")).toBe(4);
    // Still four after the consumer had every chance to hand out more.
    expect([...receiver.deliveries.values()].length).toBe(4);
    // Cut the hanging posts so the bridge stops at once instead of after its grace period.
    await receiver.close();
  });

  it("exposes its metrics for Prometheus and stops cleanly on SIGTERM", async () => {
    const { bridge } = await setupMode(() => 200);
    const text = await (await fetch(bridge.metricsUrl)).text();
    for (const name of ["delivered_total", "retried_total", "dead_lettered_total", "lag_events", "delivery_latency_seconds_bucket", "batch_size_events_bucket", "batches_split_total"]) {
      expect(text).toContain(`pulsecast_bridge_${name}`);
    }
    await bridge.stop();
    expect(await bridge.process.exited).toBe(0);
    expect(bridge.process.output()).toContain("stopped");
  });
});

describe("NATS -> HTTP bridge: per-event batch results and whole-batch refusals", () => {
  it("sends ready events as signed batches and acts per event: a rejected one dead-lettered, a failed one retried then delivered, the rest acked once", async () => {
    const events = Array.from({ length: 50 }, (_, i) => progress(i));
    const poison = events[7]!;
    const flaky = events[23]!;
    const { nats, receiver, bridge } = await setup((e, attempt) => (e.id === poison.id ? 422 : e.id === flaky.id && attempt === 1 ? 503 : 200), {}, { before: events });
    await receiver.waitForAccepted(49);
    await allAcked(nats);

    expect(Math.max(...receiver.batches)).toBeGreaterThan(1);
    expect(receiver.unsigned).toBe(0);
    expect(new Set(receiver.accepted)).toEqual(new Set(events.filter((e) => e !== poison).map((e) => e.id)));
    // Each good event reached the edge once, the failed one twice, the rejected one once (not retried).
    for (const e of events) expect(receiver.deliveries.get(e.id), e.id).toBe(e === flaky ? 2 : 1);
    const dl = await deadLetter(nats, "media.progress");
    expect(dl.json<Envelope>().id).toBe(poison.id);
    expect(dl.header.get(DEAD_LETTER_HEADERS.reason)).toBe("edge rejected it in a batch: http_422: scripted 422");
    expect(await bridge.metric("pulsecast_bridge_delivered_total")).toBe(49);
    expect(await bridge.metric("pulsecast_bridge_dead_lettered_total")).toBe(1);
    expect(await bridge.metric("pulsecast_bridge_retried_total")).toBe(1);
    expect(await bridge.metric("pulsecast_bridge_batches_split_total")).toBe(0);
  });

  it("retries every event of a batch refused whole with 503, with backoff, until the edge takes it", async () => {
    const events = Array.from({ length: 30 }, (_, i) => progress(i));
    // The first two batch requests fail as a whole; what comes after is taken.
    const { nats, receiver, bridge } = await setup(() => 200, {}, { before: events, batchScript: (_, n) => (n <= 2 ? 503 : undefined) });
    await receiver.waitForAccepted(30);
    await allAcked(nats);
    expect(receiver.batches.length).toBeGreaterThan(2);
    expect(await bridge.metric("pulsecast_bridge_delivered_total")).toBe(30);
    expect(await bridge.metric("pulsecast_bridge_retried_total")).toBeGreaterThanOrEqual(2);
    expect(await bridge.metric("pulsecast_bridge_dead_lettered_total")).toBe(0);
  });

  it("splits a batch refused whole with a permanent 4xx (400 malformed_batch): each event alone, only the bad one dead-lettered", async () => {
    const events = Array.from({ length: 10 }, (_, i) => progress(i));
    const poison = events[4]!;
    // This edge refuses every batch (as one that does not take batches would) and one event on its own.
    const { nats, receiver, bridge } = await setup((e) => (e.id === poison.id ? 422 : 200), {}, { before: events, batchScript: () => 400 });
    await receiver.waitForAccepted(9);
    await allAcked(nats);
    expect(receiver.batches.length).toBeGreaterThan(0);
    expect(receiver.singles).toBe(10);
    expect(new Set(receiver.accepted)).toEqual(new Set(events.filter((e) => e !== poison).map((e) => e.id)));
    const dl = await deadLetter(nats, "media.progress");
    expect(dl.json<Envelope>().id).toBe(poison.id);
    expect(dl.header.get(DEAD_LETTER_HEADERS.status)).toBe("422");
    expect(await bridge.metric("pulsecast_bridge_batches_split_total")).toBeGreaterThan(0);
    expect(await bridge.metric("pulsecast_bridge_dead_lettered_total")).toBe(1);
    expect(await bridge.metric("pulsecast_bridge_delivered_total")).toBe(9);
    expect(bridge.process.output()).toMatch(/refused whole, sending its events one by one/);
  });

  it("puts no more than BRIDGE_BATCH_MAX events in one request", async () => {
    const events = Array.from({ length: 45 }, (_, i) => progress(i));
    const { receiver, bridge } = await setup(() => 200, { BRIDGE_BATCH_MAX: "10" }, { before: events });
    await receiver.waitForAccepted(45);
    expect(Math.max(...receiver.batches)).toBeLessThanOrEqual(10);
    expect(receiver.batches.some((n) => n > 1)).toBe(true);
    await waitFor("delivered metric at 45", async () => (await bridge.metric("pulsecast_bridge_delivered_total")) === 45);
  });
});
