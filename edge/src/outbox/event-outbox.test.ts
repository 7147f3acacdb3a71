import { env } from "cloudflare:workers";
import { runDurableObjectAlarm } from "cloudflare:test";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Envelope, makeEvent } from "../../../shared/envelope.ts";
import { newId } from "../../../shared/ids.ts";
import { outboxFor, sendToMediaSide } from "./send.ts";
import { type FakeBridge, installFakeBridge } from "../../test/fake-bridge.ts";

// The outbox against a fake bridge (global fetch replaced, signatures checked as the real bridge does).
// Alarms also fire by themselves in workerd; the tests wait for what the bridge saw rather than for time,
// and use runDurableObjectAlarm to skip a backoff instead of sleeping through it.

/** Polls `check` from the test's context (see test-bridge.ts for why not a promise from the object). */
async function waitFor(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for the outbox state");
    await new Promise((r) => setTimeout(r, 10));
  }
}

function chat(roomId: string, n: number): Envelope {
  return makeEvent("chat.message", { roomId, messageId: n, userId: "u1", text: `message ${n}`, at: Date.now() }, { source: "edge", subject: `room/${roomId}` });
}


let bridge: FakeBridge;
beforeAll(() => {
  bridge = installFakeBridge(env.BRIDGE_URL!, env.BRIDGE_INGRESS_SECRET!);
});
beforeEach(() => bridge.reset());
const ids = (events: Envelope[]) => events.map((e) => e.id);

describe("EventOutbox", () => {
  it("delivers stored events in order, signed with BRIDGE_INGRESS_SECRET", async () => {
    const shard = newId("room");
    const events = [1, 2, 3, 4, 5].map((n) => chat(shard, n));
    await sendToMediaSide(env, events.slice(0, 2), shard);
    await sendToMediaSide(env, events.slice(2), shard);
    const stored = await bridge.waitForStored(ids(events));
    expect(ids(stored)).toEqual(ids(events));
    expect(stored[0]).toEqual(events[0]);
    // The bridge answered; the outbox forgets each event right after its 2xx.
    await waitFor(async () => (await outboxFor(env, shard).status()).pending === 0);
    const status = await outboxFor(env, shard).status();
    expect(status).toMatchObject({ pending: 0, deadLetters: 0, delivered: 5, failures: 0, lastError: null });
  });

  it("stores a large batch in one call and delivers it in the order handed over", async () => {
    const shard = newId("room");
    const events = Array.from({ length: 250 }, (_, n) => chat(shard, n + 1));
    bridge.mode = "down";
    await sendToMediaSide(env, events, shard);
    const pending = await outboxFor(env, shard).pending(1000);
    expect(pending.map((body) => (JSON.parse(body) as Envelope).id)).toEqual(ids(events));
    bridge.mode = "up";
    await runDurableObjectAlarm(outboxFor(env, shard));
    expect(ids(await bridge.waitForStored(ids(events)))).toEqual(ids(events));
  });

  it("keeps events while the bridge is down, retries with growing backoff, and delivers in order once it is up", async () => {
    const shard = newId("room");
    const outbox = outboxFor(env, shard);
    bridge.mode = "down";
    const events = [1, 2, 3].map((n) => chat(shard, n));
    await sendToMediaSide(env, events, shard);
    await bridge.waitForAttempts(ids(events), 1);

    // Each failed attempt reschedules the alarm further out; skip the wait with runDurableObjectAlarm.
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      const before = Date.now();
      expect(await runDurableObjectAlarm(outbox)).toBe(true);
      const status = await outbox.status();
      expect(status.pending).toBe(3);
      expect(status.lastError).toContain("503");
      expect(status.nextAttemptAt).not.toBeNull();
      delays.push(status.nextAttemptAt! - before);
    }
    // Base 500 ms doubling, +/-20 % jitter: each delay clearly longer than the one before.
    expect(delays[1]!).toBeGreaterThan(delays[0]!);
    expect(delays[2]!).toBeGreaterThan(delays[1]!);
    expect(bridge.storedOf(ids(events))).toEqual([]);
    // While the bridge is down every attempt is the same batch, the queue's head first: order is kept.
    const tries = bridge.requestsOf(ids(events));
    expect(tries.length).toBeGreaterThanOrEqual(4);
    for (const request of tries) expect(request).toMatchObject({ batch: true, ids: ids(events) });

    bridge.mode = "unreachable";
    await runDurableObjectAlarm(outbox);
    expect((await outbox.status()).lastError).toContain("ECONNREFUSED");

    bridge.mode = "up";
    await runDurableObjectAlarm(outbox);
    expect(ids(await bridge.waitForStored(ids(events)))).toEqual(ids(events));
    await waitFor(async () => (await outbox.status()).pending === 0);
    expect(await outbox.status()).toMatchObject({ pending: 0, failures: 0, lastError: null, nextAttemptAt: null });
  });

  it("dead-letters an event the bridge refuses permanently, delivers the rest, and can requeue it", async () => {
    const shard = newId("room");
    const outbox = outboxFor(env, shard);
    const events = [1, 2, 3].map((n) => chat(shard, n));
    bridge.refuse.set(events[1]!.id, 422);
    await sendToMediaSide(env, events, shard);
    await bridge.waitForStored([events[0]!.id, events[2]!.id]);
    await waitFor(async () => (await outbox.status()).deadLetters === 1);
    expect(ids(bridge.storedOf(ids(events)))).toEqual([events[0]!.id, events[2]!.id]);

    const status = await outbox.status();
    expect(status).toMatchObject({ pending: 0, deadLetters: 1, delivered: 2 });
    const [dead] = await outbox.deadLetters();
    expect(dead).toMatchObject({ id: events[1]!.id, type: "chat.message" });
    expect(JSON.parse(dead!.body)).toEqual(events[1]);
    expect(dead!.reason).toContain("422");

    // 408/429 are about timing, not the event: retried, not dead-lettered.
    bridge.refuse.set(events[1]!.id, 429);
    expect(await outbox.requeueDeadLetters()).toEqual({ requeued: 1 });
    await bridge.waitForAttempts([events[1]!.id], 2);
    await waitFor(async () => (await outbox.status()).failures === 1);
    expect(await outbox.status()).toMatchObject({ pending: 1, deadLetters: 0, failures: 1 });

    bridge.refuse.clear();
    await runDurableObjectAlarm(outbox);
    expect(ids(await bridge.waitForStored(ids(events)))).toEqual([events[0]!.id, events[2]!.id, events[1]!.id]);
  });

  it("delivers up to OUTBOX_BATCH_MAX (100) events per POST, in order", async () => {
    const shard = newId("room");
    const events = Array.from({ length: 230 }, (_, n) => chat(shard, n + 1));
    bridge.mode = "down";
    await sendToMediaSide(env, events, shard);
    bridge.mode = "up";
    await runDurableObjectAlarm(outboxFor(env, shard));
    expect(ids(await bridge.waitForStored(ids(events)))).toEqual(ids(events));
    const delivered = bridge.requestsOf(ids(events)).filter((r) => r.ids.some((id) => bridge.attemptsOf([id]).some((a) => a.status === "stored")));
    expect(delivered.map((r) => r.ids.length)).toEqual([100, 100, 30]);
    expect(delivered.every((r) => r.batch && r.webhookId.startsWith("bat_"))).toBe(true);
    await waitFor(async () => (await outboxFor(env, shard).status()).pending === 0);
    expect(await outboxFor(env, shard).status()).toMatchObject({ delivered: 230, deadLetters: 0 });
  });

  it("keeps an event the bridge failed (per-event `failed`), forgets the ones it stored, and retries only that one", async () => {
    const shard = newId("room");
    const outbox = outboxFor(env, shard);
    const events = [1, 2, 3, 4].map((n) => chat(shard, n));
    bridge.refuse.set(events[1]!.id, 503);
    await sendToMediaSide(env, events, shard);
    await bridge.waitForStored([events[0]!.id, events[2]!.id, events[3]!.id]);
    await waitFor(async () => (await outbox.status()).failures >= 1);
    const status = await outbox.status();
    expect(status).toMatchObject({ pending: 1, deadLetters: 0, delivered: 3 });
    expect(status.lastError).toContain("failed");
    expect((await outbox.pending()).map((b) => (JSON.parse(b) as Envelope).id)).toEqual([events[1]!.id]);

    bridge.refuse.clear();
    await runDurableObjectAlarm(outbox);
    await bridge.waitForStored([events[1]!.id]);
    await waitFor(async () => (await outbox.status()).pending === 0);
    // The retry carried only the failed event; the others were stored once.
    const lastTry = bridge.requestsOf(ids(events)).at(-1)!;
    expect(lastTry.ids).toEqual([events[1]!.id]);
    expect(bridge.storedOf(ids(events)).map((e) => e.id).sort()).toEqual(ids(events).sort());
    expect(await outbox.status()).toMatchObject({ pending: 0, failures: 0, lastError: null, delivered: 4 });
  });

  it("a batch refused as a whole (e.g. a bridge that does not take batches) is sent one by one, and nothing good is dead-lettered", async () => {
    const shard = newId("room");
    const outbox = outboxFor(env, shard);
    const events = [1, 2, 3].map((n) => chat(shard, n));
    bridge.refuseBatches = 400;
    bridge.refuse.set(events[2]!.id, 422);
    await sendToMediaSide(env, events, shard);
    await bridge.waitForStored([events[0]!.id, events[1]!.id]);
    await waitFor(async () => (await outbox.status()).deadLetters === 1);
    expect(ids(bridge.storedOf(ids(events)))).toEqual([events[0]!.id, events[1]!.id]);
    expect(bridge.requestsOf(ids(events)).map((r) => r.batch)).toEqual([true, false, false, false]);
    // Only the event the bridge refused on its own is a dead letter, with its own reason.
    const [dead] = await outbox.deadLetters();
    expect(dead).toMatchObject({ id: events[2]!.id });
    expect(dead!.reason).toContain("422");
    expect(await outbox.status()).toMatchObject({ pending: 0, deadLetters: 1, delivered: 2 });
  });

  it("with `once`, stores an event id only once, also after it was delivered", async () => {
    const shard = newId("user");
    const outbox = outboxFor(env, shard);
    const event = makeEvent("notification.sent", { notificationId: "n1", userId: "u1", channel: "stored", connections: 0 }, { source: "edge", subject: "user/u1" });
    bridge.mode = "down";
    expect(await outbox.enqueue([event], { once: true })).toEqual({ stored: 1 });
    expect(await outbox.enqueue([event], { once: true })).toEqual({ stored: 0 });
    bridge.mode = "up";
    await runDurableObjectAlarm(outbox);
    await bridge.waitForStored([event.id]);
    await waitFor(async () => (await outbox.status()).pending === 0);
    expect(await outbox.enqueue([event], { once: true })).toEqual({ stored: 0 });
    expect((await outbox.status()).pending).toBe(0);
    // Without `once` a pending repeat is still absorbed (id is unique in the queue).
    bridge.mode = "down";
    const other = chat("r", 1);
    expect(await outbox.enqueue([other, other])).toEqual({ stored: 1 });
  });

  it("refuses malformed and oversized events, storing nothing of that call", async () => {
    const shard = newId("room");
    const outbox = outboxFor(env, shard);
    bridge.mode = "down";
    const good = chat(shard, 1);
    const bad = { ...chat(shard, 2), type: "chat.nope" } as unknown as Envelope;
    // (.then with both handlers at once: a rejected RPC promise awaited via .rejects is also reported unhandled)
    const refused = (p: Promise<unknown>) => p.then(() => new Error("resolved"), (e: unknown) => e);
    expect(await refused(outbox.enqueue([good, bad]))).toHaveProperty("message", expect.stringMatching(/unknown event type 'chat.nope'/));
    const huge = makeEvent("notification.requested", { notificationId: "n", userId: "u1", title: "t", data: { blob: "x".repeat(70_000) } }, { source: "edge", subject: "user/u1" });
    expect(await refused(outbox.enqueue([good, huge]))).toHaveProperty("message", expect.stringMatching(/larger than 65536 bytes/));
    // Bytes, not characters: 30,000 three-byte characters are under the limit as text, over it as UTF-8.
    const wide = makeEvent("notification.requested", { notificationId: "n", userId: "u1", title: "t", data: { blob: "€".repeat(30_000) } }, { source: "edge", subject: "user/u1" });
    expect(await refused(outbox.enqueue([wide]))).toHaveProperty("message", expect.stringMatching(/larger than 65536 bytes/));
    expect(await refused(sendToMediaSide(env, [good], ""))).toHaveProperty("message", expect.stringMatching(/shardKey is empty/));
    expect((await outbox.status()).pending).toBe(0);
    expect(bridge.attemptsOf([good.id, huge.id])).toEqual([]);
  });
});
