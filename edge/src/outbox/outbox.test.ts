import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Envelope, makeEvent } from "../../../shared/envelope.ts";
import { newId } from "../../../shared/ids.ts";
import { type FakeBridge, installFakeBridge } from "../../test/fake-bridge.ts";
import type { Room } from "../rooms/room.ts";
import { edgeSettings } from "../settings.ts";
import { OUTBOX_JITTER, Outbox } from "./outbox.ts";

// The outbox a room carries, against a fake bridge (global fetch replaced, signatures checked as the real bridge
// does). Events are added inside the room object, as the room itself does. Alarms also fire by themselves in
// workerd; the tests wait for what the bridge saw rather than for time, and use runDurableObjectAlarm to skip a
// backoff instead of sleeping through it.

/** Polls `check` from the test's context (see fake-bridge.ts for why not a promise from the object). */
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

const roomStub = (roomId: string) => env.Room.getByName(roomId);
/** Adds events to the room's outbox from inside the room (one call = one add, as the room does per change). */
const add = (roomId: string, events: Envelope[]) => runInDurableObject(roomStub(roomId), (room: Room) => room.outbox.add(events));

let bridge: FakeBridge;
beforeAll(() => {
  bridge = installFakeBridge(env.BRIDGE_URL!, env.BRIDGE_INGRESS_SECRET!);
});
beforeEach(() => bridge.reset());
const ids = (events: Envelope[]) => events.map((e) => e.id);

describe("a room's outbox", () => {
  it("delivers stored events in order, signed with BRIDGE_INGRESS_SECRET", async () => {
    const room = newId("room");
    const events = [1, 2, 3, 4, 5].map((n) => chat(room, n));
    await add(room, events.slice(0, 2));
    await add(room, events.slice(2));
    const stored = await bridge.waitForStored(ids(events));
    expect(ids(stored)).toEqual(ids(events));
    expect(stored[0]).toEqual(events[0]);
    // The bridge answered; the outbox forgets each event right after its 2xx.
    await waitFor(async () => (await roomStub(room).outboxStatus()).pending === 0);
    const status = await roomStub(room).outboxStatus();
    expect(status).toMatchObject({ pending: 0, deadLetters: 0, delivered: 5, dropped: 0, failures: 0, lastError: null });
  });

  it("stores a large batch in one call and delivers it in the order handed over", async () => {
    const room = newId("room");
    const events = Array.from({ length: 250 }, (_, n) => chat(room, n + 1));
    bridge.mode = "down";
    expect(await add(room, events)).toBe(250);
    const pending = await roomStub(room).outboxPending(1000);
    expect(pending.map((body) => (JSON.parse(body) as Envelope).id)).toEqual(ids(events));
    bridge.mode = "up";
    await runDurableObjectAlarm(roomStub(room));
    expect(ids(await bridge.waitForStored(ids(events)))).toEqual(ids(events));
  });

  it("keeps events while the bridge is down, retries with growing backoff, and delivers in order once it is up", async () => {
    const room = newId("room");
    const stub = roomStub(room);
    bridge.mode = "down";
    const events = [1, 2, 3].map((n) => chat(room, n));
    await add(room, events);
    await bridge.waitForAttempts(ids(events), 1);

    // Each failed attempt reschedules the alarm further out; skip the wait with runDurableObjectAlarm. The delay
    // is read from the outbox's own record (nextAttemptAt - lastFailureAt), so a slow machine cannot blur it; an
    // automatic retry in between only moves to the next step of the curve.
    const steps: { failures: number; delay: number }[] = [];
    for (let i = 0; i < 3; i++) {
      expect(await runDurableObjectAlarm(stub)).toBe(true);
      const status = await stub.outboxStatus();
      expect(status.pending).toBe(3);
      expect(status.lastError).toContain("503");
      expect(status.nextAttemptAt).not.toBeNull();
      steps.push({ failures: status.failures, delay: status.nextAttemptAt! - status.lastFailureAt! });
    }
    // Base OUTBOX_RETRY_BASE_MS doubling per failure, +/-20 % jitter: every delay in its own band, each band above the last.
    const { outboxRetryBaseMs: base, outboxRetryMaxMs: max } = edgeSettings(env);
    for (const { failures, delay } of steps) {
      const cap = Math.min(max, base * 2 ** (failures - 1));
      expect(delay).toBeGreaterThanOrEqual(Math.floor(cap * (1 - OUTBOX_JITTER)));
      expect(delay).toBeLessThanOrEqual(Math.ceil(cap * (1 + OUTBOX_JITTER)));
    }
    expect(steps[1]!.failures).toBeGreaterThan(steps[0]!.failures);
    expect(steps[2]!.failures).toBeGreaterThan(steps[1]!.failures);
    expect(steps[1]!.delay).toBeGreaterThan(steps[0]!.delay);
    expect(steps[2]!.delay).toBeGreaterThan(steps[1]!.delay);
    expect(bridge.storedOf(ids(events))).toEqual([]);
    // While the bridge is down every attempt is the same batch, the queue's head first: order is kept.
    const tries = bridge.requestsOf(ids(events));
    expect(tries.length).toBeGreaterThanOrEqual(4);
    for (const request of tries) expect(request).toMatchObject({ batch: true, ids: ids(events) });

    bridge.mode = "unreachable";
    await runDurableObjectAlarm(stub);
    expect((await stub.outboxStatus()).lastError).toContain("ECONNREFUSED");

    bridge.mode = "up";
    await runDurableObjectAlarm(stub);
    expect(ids(await bridge.waitForStored(ids(events)))).toEqual(ids(events));
    await waitFor(async () => (await stub.outboxStatus()).pending === 0);
    expect(await stub.outboxStatus()).toMatchObject({ pending: 0, failures: 0, lastError: null, nextAttemptAt: null });
  });

  it("dead-letters an event the bridge refuses permanently, delivers the rest, and can requeue it", async () => {
    const room = newId("room");
    const stub = roomStub(room);
    const events = [1, 2, 3].map((n) => chat(room, n));
    bridge.refuse.set(events[1]!.id, 422);
    await add(room, events);
    await bridge.waitForStored([events[0]!.id, events[2]!.id]);
    await waitFor(async () => (await stub.outboxStatus()).deadLetters === 1);
    expect(ids(bridge.storedOf(ids(events)))).toEqual([events[0]!.id, events[2]!.id]);

    const status = await stub.outboxStatus();
    expect(status).toMatchObject({ pending: 0, deadLetters: 1, delivered: 2 });
    const [dead] = await stub.outboxDeadLetters();
    expect(dead).toMatchObject({ id: events[1]!.id, type: "chat.message" });
    expect(JSON.parse(dead!.body)).toEqual(events[1]);
    expect(dead!.reason).toContain("422");

    // 408/429 are about timing, not the event: retried, not dead-lettered, and every failed try is counted.
    const id = events[1]!.id;
    bridge.refuse.set(id, 429);
    expect(await stub.requeueDeadLetters()).toEqual({ requeued: 1 });
    await bridge.waitForAttempts([id], 2);
    // Freeze the retries (later ones wait at the bridge unanswered), so the count below cannot move while it is read.
    bridge.hold();
    // A 429 for one event of a batch comes back as that event's `failed` result.
    const refusedTries = () => bridge.attemptsOf([id]).filter((a) => a.status === "failed" || a.status === 429).length;
    await waitFor(async () => (await stub.outboxStatus()).failures === refusedTries());
    expect(refusedTries()).toBeGreaterThanOrEqual(1);
    expect(await stub.outboxStatus()).toMatchObject({ pending: 1, deadLetters: 0, failures: refusedTries() });

    bridge.refuse.clear();
    bridge.release();
    await runDurableObjectAlarm(stub);
    expect(ids(await bridge.waitForStored(ids(events)))).toEqual([events[0]!.id, events[2]!.id, events[1]!.id]);
  });

  it("delivers up to OUTBOX_BATCH_MAX (100) events per POST, in order", async () => {
    const room = newId("room");
    const events = Array.from({ length: 230 }, (_, n) => chat(room, n + 1));
    bridge.mode = "down";
    await add(room, events);
    bridge.mode = "up";
    await runDurableObjectAlarm(roomStub(room));
    expect(ids(await bridge.waitForStored(ids(events)))).toEqual(ids(events));
    const delivered = bridge.requestsOf(ids(events)).filter((r) => r.ids.some((id) => bridge.attemptsOf([id]).some((a) => a.status === "stored")));
    expect(delivered.map((r) => r.ids.length)).toEqual([100, 100, 30]);
    expect(delivered.every((r) => r.batch && r.webhookId.startsWith("bat_"))).toBe(true);
    await waitFor(async () => (await roomStub(room).outboxStatus()).pending === 0);
    expect(await roomStub(room).outboxStatus()).toMatchObject({ delivered: 230, deadLetters: 0 });
  });

  it("keeps an event the bridge failed (per-event `failed`), forgets the ones it stored, and retries only that one", async () => {
    const room = newId("room");
    const stub = roomStub(room);
    const events = [1, 2, 3, 4].map((n) => chat(room, n));
    bridge.refuse.set(events[1]!.id, 503);
    await add(room, events);
    await bridge.waitForStored([events[0]!.id, events[2]!.id, events[3]!.id]);
    await waitFor(async () => (await stub.outboxStatus()).failures >= 1);
    const status = await stub.outboxStatus();
    expect(status).toMatchObject({ pending: 1, deadLetters: 0, delivered: 3 });
    expect(status.lastError).toContain("failed");
    expect((await stub.outboxPending()).map((b) => (JSON.parse(b) as Envelope).id)).toEqual([events[1]!.id]);

    bridge.refuse.clear();
    await runDurableObjectAlarm(stub);
    await bridge.waitForStored([events[1]!.id]);
    await waitFor(async () => (await stub.outboxStatus()).pending === 0);
    // The retry carried only the failed event; the others were stored once.
    const lastTry = bridge.requestsOf(ids(events)).at(-1)!;
    expect(lastTry.ids).toEqual([events[1]!.id]);
    expect(bridge.storedOf(ids(events)).map((e) => e.id).sort()).toEqual(ids(events).sort());
    expect(await stub.outboxStatus()).toMatchObject({ pending: 0, failures: 0, lastError: null, delivered: 4 });
  });

  it("a batch refused as a whole (e.g. a bridge that does not take batches) is sent one by one, and nothing good is dead-lettered", async () => {
    const room = newId("room");
    const stub = roomStub(room);
    const events = [1, 2, 3].map((n) => chat(room, n));
    bridge.refuseBatches = 400;
    bridge.refuse.set(events[2]!.id, 422);
    await add(room, events);
    await bridge.waitForStored([events[0]!.id, events[1]!.id]);
    await waitFor(async () => (await stub.outboxStatus()).deadLetters === 1);
    expect(ids(bridge.storedOf(ids(events)))).toEqual([events[0]!.id, events[1]!.id]);
    expect(bridge.requestsOf(ids(events)).map((r) => r.batch)).toEqual([true, false, false, false]);
    // Only the event the bridge refused on its own is a dead letter, with its own reason.
    const [dead] = await stub.outboxDeadLetters();
    expect(dead).toMatchObject({ id: events[2]!.id });
    expect(dead!.reason).toContain("422");
    expect(await stub.outboxStatus()).toMatchObject({ pending: 0, deadLetters: 1, delivered: 2 });
  });

  it("absorbs a repeat of an event id that is still waiting", async () => {
    const room = newId("room");
    bridge.mode = "down";
    const event = chat(room, 1);
    expect(await add(room, [event, event])).toBe(1);
    expect(await add(room, [event])).toBe(0);
    expect((await roomStub(room).outboxStatus()).pending).toBe(1);
  });

  it("refuses malformed and oversized events, storing nothing of that call", async () => {
    const room = newId("room");
    bridge.mode = "down";
    const good = chat(room, 1);
    const bad = { ...chat(room, 2), type: "chat.nope" } as unknown as Envelope;
    const refused = (p: Promise<unknown>) => p.then(() => new Error("resolved"), (e: unknown) => e);
    expect(await refused(add(room, [good, bad]))).toHaveProperty("message", expect.stringMatching(/unknown event type 'chat.nope'/));
    const huge = makeEvent("notification.requested", { notificationId: "n", userId: "u1", title: "t", data: { blob: "x".repeat(70_000) } }, { source: "edge", subject: "user/u1" });
    expect(await refused(add(room, [good, huge]))).toHaveProperty("message", expect.stringMatching(/larger than 65536 bytes/));
    // Bytes, not characters: 30,000 three-byte characters are under the limit as text, over it as UTF-8.
    const wide = makeEvent("notification.requested", { notificationId: "n", userId: "u1", title: "t", data: { blob: "€".repeat(30_000) } }, { source: "edge", subject: "user/u1" });
    expect(await refused(add(room, [wide]))).toHaveProperty("message", expect.stringMatching(/larger than 65536 bytes/));
    expect((await roomStub(room).outboxStatus()).pending).toBe(0);
    expect(bridge.attemptsOf([good.id, huge.id])).toEqual([]);
  });

  it("keeps at most OUTBOX_MAX_PENDING events: past it the oldest are dropped and counted, the newest kept in order", async () => {
    const room = newId("room");
    bridge.mode = "down";
    const events = Array.from({ length: 25 }, (_, n) => chat(room, n + 1));
    const dropped = await runInDurableObject(roomStub(room), async (_room: Room, state) => {
      // The same table and alarm as the room's own outbox, with a bound small enough to test.
      const small = new Outbox(state.storage, {
        retryBaseMs: 500, retryMaxMs: 60_000, deliveryTimeoutMs: 1000, batchMax: 100, maxPending: 10, gatherMs: 0,
        target: () => ({ url: env.BRIDGE_URL, secrets: [env.BRIDGE_INGRESS_SECRET!], timeoutMs: 1000 }),
        label: () => room,
      });
      for (const event of events) small.add([event]);
      return (await small.status()).dropped;
    });
    expect(dropped).toBe(15);
    const status = await roomStub(room).outboxStatus();
    expect(status).toMatchObject({ pending: 10, dropped: 15 });
    expect((await roomStub(room).outboxPending(100)).map((b) => (JSON.parse(b) as Envelope).id)).toEqual(ids(events.slice(15)));
    // What is kept still goes out, in order, once the bridge is back.
    bridge.mode = "up";
    await runDurableObjectAlarm(roomStub(room));
    expect(ids(await bridge.waitForStored(ids(events.slice(15))))).toEqual(ids(events.slice(15)));
  });

  it("counts waiting events once per life of the object, not once per add", async () => {
    const room = newId("room");
    bridge.mode = "down";
    const events = Array.from({ length: 300 }, (_, n) => chat(room, n + 1));
    const counted = await runInDurableObject(roomStub(room), (instance: Room, state) => {
      const sql = state.storage.sql;
      const exec = sql.exec.bind(sql);
      let counts = 0;
      (sql as { exec: typeof sql.exec }).exec = ((query: string, ...args: unknown[]) => {
        if (/COUNT\(\*\)/i.test(query)) counts++;
        return exec(query, ...(args as []));
      }) as typeof sql.exec;
      try {
        for (const event of events) instance.outbox.add([event]);
      } finally {
        (sql as { exec: typeof sql.exec }).exec = exec;
      }
      return counts;
    });
    expect(counted).toBeLessThanOrEqual(1);
    expect((await roomStub(room).outboxStatus()).pending).toBe(300);
  });

  it("loses nothing across eviction: events waiting for a down bridge go out from the next life of the room", async () => {
    const room = newId("room");
    bridge.mode = "down";
    const events = [1, 2, 3].map((n) => chat(room, n));
    await add(room, events);
    await bridge.waitForAttempts(ids(events), 1);
    await evictDurableObject(roomStub(room));
    bridge.mode = "up";
    // The alarm survived the eviction; running it wakes a fresh instance, which delivers in order.
    await runDurableObjectAlarm(roomStub(room));
    expect(ids(await bridge.waitForStored(ids(events)))).toEqual(ids(events));
    await waitFor(async () => (await roomStub(room).outboxStatus()).pending === 0);
  });
});
