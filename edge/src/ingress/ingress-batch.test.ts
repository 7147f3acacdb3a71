import { env, exports } from "cloudflare:workers";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BATCH_CONTENT_TYPE, type EventResult, MAX_BATCH_EVENTS, newBatchId } from "../../../shared/batch.ts";
import { type Envelope, makeEvent } from "../../../shared/envelope.ts";
import { newId } from "../../../shared/ids.ts";
import { signWebhook } from "../../../shared/signing/webhooks.ts";
import type { Env } from "../env.ts";
import { sentEventId } from "../../../shared/notification-ids.ts";
import { type FakeBridge, installFakeBridge } from "../../test/fake-bridge.ts";
import { ingressRoutes } from "./routes.ts";
import { appliedIn, type BusStats, fetchBusStats } from "../../test/ingress.ts";

// POST /hooks/events with a batch (shared/batch.ts) through the real front Worker inside workerd, with the real
// Room and Inbox objects. "Applied" and "nothing applied" are checked in the target objects' AppliedLedger.

const SECRET = env.EDGE_INGRESS_SECRET!;

interface BatchOptions {
  secret?: string;
  /** change the body after signing */
  tamper?: (body: string) => string;
}

async function batchRequest(body: string, opts: BatchOptions = {}): Promise<RequestInit> {
  const headers = await signWebhook(opts.secret ?? SECRET, newBatchId(), body);
  return { method: "POST", headers: { ...headers, "content-type": BATCH_CONTENT_TYPE }, body: opts.tamper ? opts.tamper(body) : body };
}

const bodyOf = (items: unknown[]) => JSON.stringify({ batch: items });

async function postBatch(items: unknown[], opts: BatchOptions = {}) {
  const res = await exports.default.fetch("http://edge/hooks/events", await batchRequest(bodyOf(items), opts));
  return { status: res.status, body: (await res.json()) as { results: EventResult[]; error?: { code: string; message: string } } };
}

const statuses = (results: EventResult[]) => results.map((r) => r.status);

function streamLive(roomId: string): Envelope<"stream.live"> {
  return makeEvent(
    "stream.live",
    { streamId: newId("str"), roomId, nodeId: "node-1", playbackUrl: "https://cdn.example/live/x/master.m3u8", renditions: [] },
    { source: "media-node/node-1", subject: `stream/${roomId}` },
  );
}

function mediaReady(ownerId: string, roomId: string): Envelope<"media.ready"> {
  return makeEvent("media.ready", { mediaId: newId("med"), ownerId, roomId, playbackUrl: "https://cdn.example/vod/m/master.m3u8", durationS: 3 }, { source: "media-node/n1", subject: "media/x" });
}

function notificationRequested(userId: string): Envelope<"notification.requested"> {
  return makeEvent("notification.requested", { notificationId: newId("ntf"), userId, title: "hello" }, { source: "media-node/n1", subject: `user/${userId}` });
}

async function stats() {
  const res = await fetchBusStats();
  return (await res.json()) as BusStats;
}

let bridge: FakeBridge;
beforeAll(() => {
  bridge = installFakeBridge(env.BRIDGE_URL!, env.BRIDGE_INGRESS_SECRET!);
});
beforeEach(() => {
  bridge.reset();
  bridge.mode = "down";
});

describe("POST /hooks/events with a batch", () => {
  it("applies every event once even when the batch is posted twice, counting per event", async () => {
    const rooms = [newId("room"), newId("room"), newId("room")];
    // Several events for one room and one for each other room: one call per room.
    const events = [streamLive(rooms[0]!), streamLive(rooms[1]!), streamLive(rooms[0]!), streamLive(rooms[2]!)];
    const before = await stats();
    const first = await postBatch(events);
    expect(first.status).toBe(200);
    expect(first.body.results).toEqual(events.map((e) => ({ id: e.id, status: "applied" })));
    const again = await postBatch(events);
    expect(again.body.results).toEqual(events.map((e) => ({ id: e.id, status: "duplicate" })));
    for (const e of events) expect(await appliedIn("Room", e.data.roomId!, e.id)).toBe(true);
    const after = await stats();
    expect(after.applied - before.applied).toBe(4);
    expect(after.duplicates - before.duplicates).toBe(4);
    expect(after.appliedTwice).toBe(0);
    // The single-event form sees the same ledger.
    const single = JSON.stringify(events[0]);
    const res = await exports.default.fetch("http://edge/hooks/events", {
      method: "POST",
      headers: { ...(await signWebhook(SECRET, events[0]!.id, single)), "content-type": "application/json" },
      body: single,
    });
    expect(await res.json()).toEqual({ duplicate: true, id: events[0]!.id });
  });

  it("answers each event of a mixed batch on its own, in input order, and only the good ones take effect", async () => {
    const roomId = newId("room");
    const done = streamLive(roomId);
    expect((await postBatch([done])).body.results[0]?.status).toBe("applied");

    const good = streamLive(roomId);
    const malformed = { ...streamLive(roomId), time: undefined };
    const badData = { ...streamLive(roomId), data: { streamId: "s", roomId, playbackUrl: "not a url" } };
    const unknownType = { ...streamLive(roomId), type: "stream.exploded" };
    const ignored = makeEvent("chat.message", { roomId, messageId: 1, userId: "u1", text: "hi", at: 1 }, { source: "edge", subject: `room/${roomId}` });
    const oversized = { ...streamLive(roomId), padding: "x".repeat(70_000) };
    const before = await stats();
    const { status, body } = await postBatch([good, done, malformed, 42, badData, unknownType, ignored, oversized]);
    expect(status).toBe(200);
    expect(body.results).toEqual([
      { id: good.id, status: "applied" },
      { id: done.id, status: "duplicate" },
      { id: malformed.id, status: "rejected", code: "malformed_event", message: expect.any(String) },
      { id: "#3", status: "rejected", code: "malformed_event", message: expect.any(String) },
      { id: badData.id, status: "rejected", code: "malformed_event", message: expect.any(String) },
      { id: unknownType.id, status: "rejected", code: "unknown_event_type", message: expect.stringContaining("stream.exploded") },
      { id: ignored.id, status: "ignored", code: "no_edge_consumer", message: "chat.message starts at the edge; the edge does not take it back" },
      { id: oversized.id, status: "rejected", code: "too_large", message: expect.any(String) },
    ]);
    expect(await appliedIn("Room", roomId, good.id)).toBe(true);
    for (const id of [malformed.id, badData.id, unknownType.id, ignored.id, oversized.id]) expect(await appliedIn("Room", roomId, id)).toBe(false);
    const after = await stats();
    expect(after.applied - before.applied).toBe(1);
    expect(after.duplicates - before.duplicates).toBe(1);
    expect(after.ignored - before.ignored).toBe(1);
    expect((after.rejected.malformed_event ?? 0) - (before.rejected.malformed_event ?? 0)).toBe(3);
    expect((after.rejected.unknown_event_type ?? 0) - (before.rejected.unknown_event_type ?? 0)).toBe(1);
  });

  it("a failing target fails only its own events; the retry applies them once and repeats nothing", async () => {
    const [okRoom, badRoom, owner] = [newId("room"), newId("room"), newId("user")];
    const okEvent = streamLive(okRoom);
    const badEvent = streamLive(badRoom);
    // Two targets: the owner's inbox takes it, the broken room does not.
    const twoTargets = mediaReady(owner, badRoom);
    const broken = {
      ...env,
      Room: { getByName: (name: string) => (name === badRoom ? { applyEvents: () => Promise.reject(new Error("storage exploded")) } : env.Room.getByName(name)) },
    } as unknown as Env;
    const before = await stats();
    const res = await ingressRoutes.request("/hooks/events", await batchRequest(bodyOf([okEvent, badEvent, twoTargets])), broken);
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: EventResult[] };
    expect(statuses(results)).toEqual(["applied", "failed", "failed"]);
    expect(results[1]).toMatchObject({ code: "apply_failed", message: expect.stringContaining("storage exploded") });
    expect((await stats()).failed - before.failed).toBe(2);
    expect(await appliedIn("Room", okRoom, okEvent.id)).toBe(true);
    expect(await appliedIn("Room", badRoom, badEvent.id)).toBe(false);
    expect(await appliedIn("Inbox", owner, twoTargets.id)).toBe(true);
    expect(await appliedIn("Room", badRoom, twoTargets.id)).toBe(false);

    // The bridge retries just the failed ones: applied where missing, nowhere twice.
    expect(statuses((await postBatch([badEvent, twoTargets])).body.results)).toEqual(["applied", "applied"]);
    expect(await appliedIn("Room", badRoom, twoTargets.id)).toBe(true);
    expect(await env.Inbox.getByName(owner).unread()).toBe(1);
    expect(statuses((await postBatch([okEvent, badEvent, twoTargets])).body.results)).toEqual(["duplicate", "duplicate", "duplicate"]);
  });

  it("notification.requested in a batch: each user's inbox once, and one notification.sent per notification in the outbox", async () => {
    const [u1, u2] = [newId("user"), newId("user")];
    const requests = [notificationRequested(u1), notificationRequested(u2), notificationRequested(u1)];
    expect(statuses((await postBatch(requests)).body.results)).toEqual(["applied", "applied", "applied"]);
    expect(statuses((await postBatch(requests)).body.results)).toEqual(["duplicate", "duplicate", "duplicate"]);
    expect(await env.Inbox.getByName(u1).unread()).toBe(2);
    const pending = (await env.Inbox.getByName(u1).outboxPending()).map((b) => JSON.parse(b) as Envelope);
    expect(pending.map((e) => e.id)).toEqual([await sentEventId(u1, requests[0]!.data.notificationId), await sentEventId(u1, requests[2]!.data.notificationId)]);
    expect(pending.every((e) => e.type === "notification.sent")).toBe(true);
    expect((await env.Inbox.getByName(u2).outboxPending()).length).toBe(1);
  });
});

describe("POST /hooks/events with a batch: refused as a whole, nothing applied", () => {
  const cases: { name: string; status: number; code: string; body: (e: Envelope) => string; opts?: BatchOptions }[] = [
    { name: "a bad signature (body changed after signing)", status: 401, code: "bad_signature", body: (e) => bodyOf([e]), opts: { tamper: (b) => b.replace("node-1", "node-2") } },
    { name: "the wrong secret", status: 401, code: "bad_signature", body: (e) => bodyOf([e]), opts: { secret: "some-other-secret-0123456789" } },
    { name: "a body that is not JSON", status: 400, code: "malformed_batch", body: (e) => `{"batch":[${JSON.stringify(e)}` },
    { name: "a single event sent as a batch", status: 400, code: "malformed_batch", body: (e) => JSON.stringify(e) },
    { name: "an empty batch", status: 400, code: "malformed_batch", body: () => bodyOf([]) },
    { name: "too many events", status: 400, code: "malformed_batch", body: (e) => bodyOf(Array.from({ length: MAX_BATCH_EVENTS + 1 }, () => e)) },
    { name: "an oversized batch", status: 413, code: "too_large", body: (e) => bodyOf(Array.from({ length: 20 }, () => ({ ...e, padding: "x".repeat(60_000) }))) },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.status} ${c.code}`, async () => {
      const roomId = newId("room");
      const event = streamLive(roomId);
      const before = await stats();
      const res = await exports.default.fetch("http://edge/hooks/events", await batchRequest(c.body(event), c.opts));
      expect(res.status).toBe(c.status);
      const body = (await res.json()) as { error?: { code: string; message: string } };
      expect(body.error?.code).toBe(c.code);
      expect(body.error?.message).toEqual(expect.any(String));
      expect(await appliedIn("Room", roomId, event.id)).toBe(false);
      const after = await stats();
      expect(after.applied).toBe(before.applied);
      expect(after.rejected[c.code]).toBe((before.rejected[c.code] ?? 0) + 1);
    });
  }

  it("an oversized batch without Content-Length (chunked) is cut off at MAX_BATCH_BYTES", async () => {
    const init = await batchRequest(bodyOf([streamLive(newId("room"))]));
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent++;
        controller.enqueue(chunk);
      },
    });
    const res = await exports.default.fetch("http://edge/hooks/events", { ...init, body, duplex: "half" } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("too_large");
    // 1 MiB in 64 KiB chunks, plus what was in flight
    expect(sent).toBeLessThan(40);
  });
});
