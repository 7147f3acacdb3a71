import { env, exports } from "cloudflare:workers";
import { runDurableObjectAlarm } from "cloudflare:test";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Envelope, makeEvent } from "../../../shared/envelope.ts";
import { newId } from "../../../shared/ids.ts";
import { signWebhook } from "../../../shared/signing/webhooks.ts";
import type { Env } from "../env.ts";
import { userShard } from "../outbox/carrier.ts";
import { sentEventId } from "../../../shared/notification-ids.ts";
import { type FakeBridge, installFakeBridge } from "../../test/fake-bridge.ts";
import { ingressRoutes } from "./routes.ts";
import { appliedIn, type BusStats, fetchBusStats, INTERNAL } from "../../test/ingress.ts";

// POST /hooks/events through the real front Worker inside workerd, with the real Room and Inbox objects.
// "Nothing applied" is checked where it counts: the target object's AppliedLedger.

const SECRET = env.EDGE_INGRESS_SECRET!;

interface PostOptions {
  secret?: string | string[];
  timestampS?: number;
  webhookId?: string;
  /** body to send instead of the event's JSON (signed as given) */
  body?: string;
  /** change the body after signing */
  tamper?: (body: string) => string;
  headers?: Record<string, string>;
}

async function signedRequest(event: Envelope | null, opts: PostOptions = {}): Promise<RequestInit> {
  const body = opts.body ?? JSON.stringify(event);
  const id = opts.webhookId ?? event?.id ?? "evt_none";
  const headers = await signWebhook(opts.secret ?? SECRET, id, body, opts.timestampS);
  return { method: "POST", headers: { ...headers, "content-type": "application/json", ...opts.headers }, body: opts.tamper ? opts.tamper(body) : body };
}

async function post(event: Envelope | null, opts: PostOptions = {}) {
  const res = await exports.default.fetch("http://edge/hooks/events", await signedRequest(event, opts));
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { error?: { code: string; message: string } } };
}

function streamLive(roomId: string): Envelope {
  return makeEvent(
    "stream.live",
    { streamId: newId("str"), roomId, nodeId: "node-1", playbackUrl: "https://cdn.example/live/x/master.m3u8", renditions: [{ name: "720p", bandwidth: 3_000_000 }] },
    { source: "media-node/node-1", subject: `room/${roomId}` },
  );
}

function notificationRequested(userId: string): Envelope<"notification.requested"> {
  return makeEvent("notification.requested", { notificationId: newId("ntf"), userId, title: "Your upload is live" }, { source: "media-node/node-1", subject: `user/${userId}` });
}

async function stats() {
  const res = await fetchBusStats();
  expect(res.status).toBe(200);
  return (await res.json()) as BusStats;
}

let bridge: FakeBridge;
beforeAll(() => {
  // The outbox (notification.sent) must not reach the network: a fake bridge, down so answers stay pending.
  bridge = installFakeBridge(env.BRIDGE_URL!, env.BRIDGE_INGRESS_SECRET!);
});
beforeEach(() => {
  bridge.reset();
  bridge.mode = "down";
});

describe("POST /hooks/events: a valid event", () => {
  it("is applied once at the stream's room even when posted three times", async () => {
    const roomId = newId("room");
    const event = streamLive(roomId);
    const before = await stats();
    expect(await post(event)).toEqual({ status: 200, body: { applied: true, id: event.id } });
    expect(await post(event)).toEqual({ status: 200, body: { duplicate: true, id: event.id } });
    expect(await post(event)).toEqual({ status: 200, body: { duplicate: true, id: event.id } });
    expect(await appliedIn("Room", roomId, event.id)).toBe(true);
    const after = await stats();
    expect(after.applied - before.applied).toBe(1);
    expect(after.duplicates - before.duplicates).toBe(2);
    expect(after.appliedTwice).toBe(0);
  });

  it("a byte-for-byte replay of a signed request within the tolerance is a duplicate with no effect", async () => {
    const event = streamLive(newId("room"));
    const init = await signedRequest(event);
    const first = await exports.default.fetch("http://edge/hooks/events", init);
    const replay = await exports.default.fetch("http://edge/hooks/events", { ...init });
    expect([first.status, await first.json()]).toEqual([200, { applied: true, id: event.id }]);
    expect([replay.status, await replay.json()]).toEqual([200, { duplicate: true, id: event.id }]);
  });

  it("stream events without roomId go to the room named after the stream", async () => {
    const streamId = newId("str");
    const event = makeEvent("stream.started", { streamId, nodeId: "n1", app: "live" }, { source: "media-node/n1", subject: `stream/${streamId}` });
    expect((await post(event)).body).toEqual({ applied: true, id: event.id });
    expect(await appliedIn("Room", streamId, event.id)).toBe(true);
  });

  it("media.ready reaches the owner's inbox and the room", async () => {
    const roomId = newId("room");
    const ownerId = newId("user");
    const event = makeEvent(
      "media.ready",
      { mediaId: newId("med"), ownerId, roomId, playbackUrl: "https://cdn.example/vod/m/master.m3u8", durationS: 12 },
      { source: "media-node/n1", subject: `media/x` },
    );
    expect((await post(event)).body).toEqual({ applied: true, id: event.id });
    expect(await appliedIn("Inbox", ownerId, event.id)).toBe(true);
    expect(await appliedIn("Room", roomId, event.id)).toBe(true);
    expect(await env.Inbox.getByName(ownerId).unread()).toBe(1);
    expect((await post(event)).body).toEqual({ duplicate: true, id: event.id });
    expect(await env.Inbox.getByName(ownerId).unread()).toBe(1);
  });

  it("notification.requested reaches the user's inbox and yields one notification.sent in the outbox", async () => {
    const userId = newId("user");
    const event = notificationRequested(userId);
    expect((await post(event)).body).toEqual({ applied: true, id: event.id });
    expect(await post(event)).toMatchObject({ status: 200, body: { duplicate: true } });
    // The requester retrying under a fresh event id for the same notification: no second notification.
    const retried = makeEvent("notification.requested", event.data, { source: event.source, subject: event.subject });
    expect(await post(retried)).toMatchObject({ status: 200, body: { duplicate: true } });
    expect(await env.Inbox.getByName(userId).unread()).toBe(1);

    const outbox = env.Inbox.getByName(userId);
    const pending = (await outbox.outboxPending()).map((body) => JSON.parse(body) as Envelope);
    expect(pending).toHaveLength(1);
    expect(pending[0]).toMatchObject({
      id: await sentEventId(userId, event.data.notificationId),
      type: "notification.sent",
      source: "edge",
      data: { notificationId: event.data.notificationId, userId, channel: "socket", outcome: "stored", connections: 0 },
    });

    // Once the bridge is up it receives exactly that one answer.
    bridge.mode = "up";
    await runDurableObjectAlarm(outbox);
    const [sent] = await bridge.waitForStored([pending[0]!.id]);
    expect(sent).toEqual(pending[0]);
  });

  it("valid events the edge has no use for are acknowledged as ignored", async () => {
    const chat = makeEvent("chat.message", { roomId: "r1", messageId: 1, userId: "u1", text: "hi", at: 1 }, { source: "edge", subject: "room/r1" });
    expect(await post(chat)).toEqual({ status: 200, body: { ignored: true, id: chat.id, reason: "chat.message starts at the edge; the edge does not take it back" } });
    const progress = makeEvent("media.progress", { mediaId: "m1", stage: "transcode", percent: 10 }, { source: "media-node/n1", subject: "media/m1" });
    expect(await post(progress)).toMatchObject({ status: 200, body: { ignored: true } });
  });

  it("accepts either secret during a rotation", async () => {
    const event = streamLive(newId("room"));
    const rotating = { ...env, EDGE_INGRESS_SECRET: `new-secret-abcdefghijklmnop, ${SECRET}` };
    const res = await ingressRoutes.request("/hooks/events", await signedRequest(event, { secret: "new-secret-abcdefghijklmnop" }), rotating);
    expect([res.status, await res.json()]).toEqual([200, { applied: true, id: event.id }]);
    const old = await ingressRoutes.request("/hooks/events", await signedRequest(event, { secret: SECRET }), rotating);
    expect([old.status, await old.json()]).toEqual([200, { duplicate: true, id: event.id }]);
  });
});

describe("POST /hooks/events: refused, nothing applied", () => {
  const nowS = () => Math.floor(Date.now() / 1000);
  const cases: { name: string; status: number; code: string; opts?: (event: Envelope) => PostOptions }[] = [
    { name: "a bad signature (body changed after signing)", status: 401, code: "bad_signature", opts: () => ({ tamper: (b) => b.replace("node-1", "node-2") }) },
    { name: "the wrong secret", status: 401, code: "bad_signature", opts: () => ({ secret: "some-other-secret-0123456789" }) },
    { name: "no signature headers", status: 401, code: "missing_headers", opts: () => ({ headers: { "webhook-signature": "" } }) },
    { name: "a stale timestamp", status: 401, code: "stale_timestamp", opts: () => ({ timestampS: nowS() - 301 }) },
    { name: "a future timestamp", status: 401, code: "future_timestamp", opts: () => ({ timestampS: nowS() + 301 }) },
    { name: "a timestamp that is not unix seconds", status: 401, code: "bad_timestamp", opts: () => ({ headers: { "webhook-timestamp": "yesterday" } }) },
    { name: "a webhook-id that differs from the event id", status: 400, code: "id_mismatch", opts: () => ({ webhookId: "evt_other" }) },
    { name: "a body that is not JSON", status: 400, code: "malformed_event", opts: (e) => ({ body: `{"id":"${e.id}",` }) },
    { name: "an envelope missing fields", status: 400, code: "malformed_event", opts: (e) => ({ body: JSON.stringify({ ...e, time: undefined }) }) },
    { name: "data that does not fit the type's schema", status: 400, code: "malformed_event", opts: (e) => ({ body: JSON.stringify({ ...e, data: { ...(e.data as object), playbackUrl: "not a url" } }) }) },
    { name: "an unknown event type", status: 422, code: "unknown_event_type", opts: (e) => ({ body: JSON.stringify({ ...e, type: "stream.exploded" }) }) },
    { name: "an oversized body", status: 413, code: "too_large", opts: (e) => ({ body: JSON.stringify({ ...e, padding: "x".repeat(70_000) }) }) },
  ];

  for (const c of cases) {
    it(`${c.name}: ${c.status} ${c.code}`, async () => {
      const roomId = newId("room");
      const event = streamLive(roomId);
      const before = await stats();
      const res = await post(event, c.opts?.(event));
      expect(res.status).toBe(c.status);
      expect(res.body.error?.code).toBe(c.code);
      expect(res.body.error?.message).toEqual(expect.any(String));
      expect(await appliedIn("Room", roomId, event.id)).toBe(false);
      const after = await stats();
      expect(after.applied).toBe(before.applied);
      expect(after.rejected[c.code]).toBe((before.rejected[c.code] ?? 0) + 1);
    });
  }

  it("an oversized body without Content-Length (chunked) is cut off at the limit", async () => {
    const event = streamLive(newId("room"));
    const init = await signedRequest(event);
    const chunk = new TextEncoder().encode("x".repeat(16 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        // An endless body: the ingress must stop reading on its own.
        sent++;
        controller.enqueue(chunk);
      },
    });
    const res = await exports.default.fetch("http://edge/hooks/events", { ...init, body, duplex: "half" } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("too_large");
    expect(sent).toBeLessThan(64);
  });

  it("honours EDGE_INGRESS_TOLERANCE_S", async () => {
    const event = streamLive(newId("room"));
    const minuteOld = await signedRequest(event, { timestampS: Math.floor(Date.now() / 1000) - 60 });
    const strict = await ingressRoutes.request("/hooks/events", minuteOld, { ...env, EDGE_INGRESS_TOLERANCE_S: "10" });
    expect([strict.status, ((await strict.json()) as { error: { code: string } }).error.code]).toEqual([401, "stale_timestamp"]);
    const lenient = await ingressRoutes.request("/hooks/events", await signedRequest(event, { timestampS: Math.floor(Date.now() / 1000) - 60 }), env);
    expect(lenient.status).toBe(200);
  });

  it("no secret configured: 503 so the bridge keeps the event", async () => {
    const event = streamLive(newId("room"));
    const res = await ingressRoutes.request("/hooks/events", await signedRequest(event), { ...env, EDGE_INGRESS_SECRET: "" });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("no_secret");
  });

  it("a target that fails: 503 so the bridge retries, and the retry applies it once", async () => {
    const roomId = newId("room");
    const event = streamLive(roomId);
    const broken = { ...env, Room: { getByName: () => ({ applyEvents: () => Promise.reject(new Error("storage exploded")) }) } } as unknown as Env;
    const res = await ingressRoutes.request("/hooks/events", await signedRequest(event), broken);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("apply_failed");
    expect(await appliedIn("Room", roomId, event.id)).toBe(false);
    expect((await post(event)).body).toEqual({ applied: true, id: event.id });
  });

  it("one of two targets failing: 503, and the retry completes the missing one without repeating the other", async () => {
    const roomId = newId("room");
    const ownerId = newId("user");
    const event = makeEvent(
      "media.failed",
      { mediaId: newId("med"), ownerId, roomId, stage: "transcode", reason: "corrupt input" },
      { source: "media-node/n1", subject: "media/x" },
    );
    const roomDown = { ...env, Room: { getByName: () => ({ applyEvents: () => Promise.reject(new Error("room unavailable")) }) } } as unknown as Env;
    const first = await ingressRoutes.request("/hooks/events", await signedRequest(event), roomDown);
    expect(first.status).toBe(503);
    expect(await appliedIn("Inbox", ownerId, event.id)).toBe(true);
    expect(await appliedIn("Room", roomId, event.id)).toBe(false);

    expect((await post(event)).body).toEqual({ applied: true, id: event.id });
    expect(await appliedIn("Room", roomId, event.id)).toBe(true);
    expect(await env.Inbox.getByName(ownerId).unread()).toBe(1);
    expect((await post(event)).body).toEqual({ duplicate: true, id: event.id });
  });
});

describe("GET /internal/bus/*", () => {
  it("needs the internal token", async () => {
    expect((await exports.default.fetch("http://edge/internal/bus/stats")).status).toBe(401);
    const wrong = await exports.default.fetch("http://edge/internal/bus/stats", { headers: { authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
    expect((await exports.default.fetch("http://edge/internal/bus/outbox/x")).status).toBe(401);
  });

  it("shows an outbox shard with its pending events and dead letters", async () => {
    const userId = newId("user");
    await post(notificationRequested(userId));
    const res = await exports.default.fetch(`http://edge/internal/bus/outbox/${encodeURIComponent(userShard(userId))}`, { headers: INTERNAL });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { pending: number; pendingEvents: Envelope[]; deadLetterEvents: unknown[] };
    expect(body.pending).toBe(1);
    expect(body.pendingEvents[0]?.type).toBe("notification.sent");
    expect(body.deadLetterEvents).toEqual([]);
  });

  it("shows a dead letter with its reason and requeues it for delivery", async () => {
    const userId = newId("user");
    const request = notificationRequested(userId);
    const sentId = await sentEventId(userId, request.data.notificationId);
    bridge.mode = "up";
    bridge.refuse.set(sentId, 422);
    await post(request);
    const shardUrl = `http://edge/internal/bus/outbox/${encodeURIComponent(userShard(userId))}`;
    type ShardView = { pending: number; deadLetters: number; deadLetterEvents: { id: string; reason: string; event: Envelope }[] };
    const view = async () => (await (await exports.default.fetch(shardUrl, { headers: INTERNAL })).json()) as ShardView;
    const deadline = Date.now() + 20_000;
    while ((await view()).deadLetters === 0) {
      if (Date.now() > deadline) throw new Error("timed out waiting for the dead letter");
      await new Promise((r) => setTimeout(r, 10));
    }
    const dead = await view();
    expect(dead.deadLetterEvents).toHaveLength(1);
    expect(dead.deadLetterEvents[0]).toMatchObject({ id: sentId, event: { type: "notification.sent" } });
    expect(dead.deadLetterEvents[0]!.reason).toContain("422");

    bridge.refuse.delete(sentId);
    const requeue = await exports.default.fetch(`${shardUrl}/requeue`, { method: "POST", headers: INTERNAL });
    expect(await requeue.json()).toEqual({ requeued: 1 });
    const [sent] = await bridge.waitForStored([sentId]);
    expect(sent?.type).toBe("notification.sent");
  });
});
