// The NATS -> HTTP bridge as a real process, between a real nats-server and a scripted signed receiver:
// retries, dead letters, loop guard, a replica killed mid-delivery, metrics.

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
import { type Script, startReceiver } from "./receiver.ts";

const progress = (n: number, source = "media-node/test") =>
  makeEvent("media.progress", { mediaId: `med_${n}`, ownerId: "u1", stage: "transcode", percent: n % 101 }, { source, subject: `media/med_${n}` });

describe("NATS -> HTTP bridge (real nats-server, bridge process, signed receiver)", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  async function setup(script: Script, bridgeEnv: Record<string, string> = {}) {
    const nats = await startNats();
    cleanups.push(() => nats.stop());
    const receiver = await startReceiver(await freePort(), script);
    cleanups.push(() => receiver.close());
    const dir = await mkdtemp(join(tmpdir(), "pulsecast-n2h-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const bus: MediaEventBus = createMediaEventBus(busConfig({ natsUrl: nats.url, outboxDir: dir }), { name: "test", log: () => undefined });
    await bus.start();
    cleanups.push(() => bus.stop());
    const bridge = await startNatsToHttpBridge({ natsUrl: nats.url, edgeUrl: receiver.url, env: { BRIDGE_RETRY_BASE_MS: "20", ...bridgeEnv } });
    cleanups.push(() => bridge.stop());
    return { nats, receiver, bus, bridge };
  }

  async function consumerState(nats: NatsServer) {
    const nc = await connect({ servers: nats.url });
    try {
      return await (await nc.jetstreamManager()).consumers.info("EVENTS", "edge-bridge");
    } finally {
      await nc.close();
    }
  }

  it("delivers every event signed, retrying 5xx and timeouts with backoff until the edge takes it", async () => {
    // Every third event fails twice (503, then a 429 with Retry-After), then succeeds.
    const events = Array.from({ length: 60 }, (_, i) => progress(i));
    const flaky = new Set(events.filter((_, i) => i % 3 === 0).map((e) => e.id));
    const { receiver, bus, bridge } = await setup((e, attempt) => (flaky.has(e.id) && attempt <= 2 ? (attempt === 1 ? 503 : 429) : 200));
    for (const e of events) await bus.publish(e);
    await receiver.waitForAccepted(60);
    expect(new Set(receiver.accepted)).toEqual(new Set(events.map((e) => e.id)));
    expect(receiver.unsigned).toBe(0);
    await waitFor("delivered metric at 60", async () => (await bridge.metric("pulsecast_bridge_delivered_total")) === 60);
    expect(await bridge.metric("pulsecast_bridge_retried_total")).toBe(40);
    expect(await bridge.metric("pulsecast_bridge_dead_lettered_total")).toBe(0);
  });

  it("moves an event the edge refuses for good (4xx) to deadletter.<type> with the reason, and acks it", async () => {
    const poison = progress(13);
    let edgeFixed = false;
    const { nats, receiver, bus, bridge } = await setup((e) => (e.id === poison.id && !edgeFixed ? 422 : 200));
    const events = [progress(1), poison, progress(2)];
    for (const e of events) await bus.publish(e);
    await receiver.waitForAccepted(2);
    await waitFor("dead-letter metric", async () => (await bridge.metric("pulsecast_bridge_dead_lettered_total")) === 1);

    const nc = await connect({ servers: nats.url });
    cleanups.push(() => nc.close());
    const jsm = await nc.jetstreamManager();
    const dl = await jsm.streams.getMessage("DEADLETTER", { last_by_subj: "deadletter.media.progress" });
    expect(dl.json<Envelope>().id).toBe(poison.id);
    expect(dl.header.get(DEAD_LETTER_HEADERS.reason)).toMatch(/^edge refused it with 422/);
    expect(dl.header.get(DEAD_LETTER_HEADERS.status)).toBe("422");
    expect(dl.header.get(DEAD_LETTER_HEADERS.subject)).toBe("media.progress");
    expect(receiver.deliveries.get(poison.id)).toBe(1); // not retried
    await waitFor("everything acked", async () => {
      const info = await consumerState(nats);
      return info.num_pending === 0 && info.num_ack_pending === 0;
    });

    // The operator fixes the edge and redrives: the event goes through the bridge again and leaves the stream.
    const [letter] = await listDeadLetters(jsm, "DEADLETTER");
    expect(letter?.letter).toMatchObject({ id: poison.id, originalSubject: "media.progress", status: 422 });
    edgeFixed = true;
    const redriven = await redriveDeadLetters(nc.jetstream(), jsm, "DEADLETTER");
    expect(redriven.map((l) => l.id)).toEqual([poison.id]);
    await receiver.waitForAccepted(3);
    expect(receiver.accepted).toContain(poison.id);
    expect(await listDeadLetters(jsm, "DEADLETTER")).toEqual([]);
  });

  it("does not send events that came from the edge back to it", async () => {
    const { receiver, bus, bridge } = await setup(() => 200);
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
    const { nats, receiver, bus, bridge } = await setup(() => (hang ? "hang" : 200), {
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
    const replica = await startNatsToHttpBridge({ natsUrl: nats.url, edgeUrl: receiver.url, env: { BRIDGE_ACK_WAIT_MS: "2000", BRIDGE_REQUEST_TIMEOUT_MS: "1500" } });
    cleanups.push(() => replica.stop());
    await receiver.waitForAccepted(20);
    expect(new Set(receiver.accepted)).toEqual(new Set(events.map((e) => e.id)));
    // The ones in flight at the kill were delivered again (the edge's ledger makes that harmless).
    expect([...receiver.deliveries.values()].filter((n) => n > 1).length).toBeGreaterThanOrEqual(8);
  });

  it("never has more events in flight than its concurrency", async () => {
    const { receiver, bus, bridge } = await setup(() => "hang", { BRIDGE_CONCURRENCY: "4", BRIDGE_REQUEST_TIMEOUT_MS: "20000" });
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
    const { bridge } = await setup(() => 200);
    const text = await (await fetch(bridge.metricsUrl)).text();
    for (const name of ["delivered_total", "retried_total", "dead_lettered_total", "lag_events", "delivery_latency_seconds_bucket"]) {
      expect(text).toContain(`pulsecast_bridge_${name}`);
    }
    await bridge.stop();
    expect(await bridge.process.exited).toBe(0);
    expect(bridge.process.output()).toContain("stopped");
  });
});
