// The HTTP -> NATS bridge as a real process in front of a real nats-server: what it stores, what it refuses
// (each refusal with a clear status and nothing stored), and 2xx only once JetStream has the event.

import { connect, type JetStreamManager, type NatsConnection } from "nats";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BATCH_CONTENT_TYPE, batchBody, type EventResult, MAX_BATCH_BYTES, newBatchId } from "../../shared/batch.ts";
import { type Envelope, makeEvent, MAX_EVENT_BYTES } from "../../shared/envelope.ts";
import { signWebhook } from "../../shared/signing/webhooks.ts";
import { type HttpToNatsBridgeProcess, startHttpToNatsBridge } from "../helpers/bridges.ts";
import { TEST_SECRETS } from "../helpers/edge.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";
import { waitFor } from "../helpers/wait.ts";

const SECRET = TEST_SECRETS.BRIDGE_INGRESS_SECRET;
const chat = (text = "hello") =>
  makeEvent("chat.message", { roomId: "lobby", messageId: 7, userId: "u1", text, at: Date.now() }, { source: "edge", subject: "room/lobby" });

describe("HTTP -> NATS bridge (real process, real nats-server)", () => {
  let nats: NatsServer;
  let bridge: HttpToNatsBridgeProcess;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let storedBefore = 0;

  beforeAll(async () => {
    nats = await startNats();
    bridge = await startHttpToNatsBridge({ nats, env: { NATS_PUBLISH_TIMEOUT_MS: "1000" } });
    nc = await connect(nats.options("ops", { maxReconnectAttempts: -1, reconnectTimeWait: 100 }));
    jsm = await nc.jetstreamManager();
  });
  afterAll(async () => {
    await nc?.close();
    await bridge?.stop();
    await nats?.stop();
  });
  // The edge-only types (chat, presence, notification.sent) are kept in EDGE_EVENTS, finished uploads
  // (media.uploaded) in the VOD job stream, the rest in EVENTS.
  const stored = async () =>
    (await jsm.streams.info("EVENTS")).state.messages + (await jsm.streams.info("EDGE_EVENTS")).state.messages + (await jsm.streams.info("VOD_JOBS")).state.messages;
  beforeEach(async () => {
    storedBefore = await stored();
  });

  async function post(body: string, headers: Record<string, string>) {
    const res = await fetch(bridge.url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
    return { status: res.status, body: (await res.json()) as { ok: boolean; error?: string; message?: string; duplicate?: boolean } };
  }
  const signedPost = async (event: unknown, opts: { id?: string; secret?: string; ts?: number; body?: string } = {}) => {
    const body = opts.body ?? JSON.stringify(event);
    return post(body, await signWebhook(opts.secret ?? SECRET, opts.id ?? (event as Envelope).id, body, opts.ts));
  };

  it("stores an accepted event in JetStream before answering 2xx, on the subject of its type", async () => {
    const e = chat();
    const reply = await signedPost(e);
    expect(reply).toMatchObject({ status: 202, body: { ok: true, duplicate: false } });
    expect(await stored()).toBe(storedBefore + 1);
    const msg = await jsm.streams.getMessage("EDGE_EVENTS", { last_by_subj: "chat.message" });
    expect(msg.json<Envelope>()).toEqual(e);
    expect(msg.header.get("Nats-Msg-Id")).toBe(e.id);
  });

  it("stores a replayed request (same event id, fresh signature) once and answers 2xx again", async () => {
    const e = chat("twice");
    expect((await signedPost(e)).status).toBe(202);
    const again = await signedPost(e);
    expect(again).toMatchObject({ status: 200, body: { ok: true, duplicate: true } });
    expect(await stored()).toBe(storedBefore + 1);
  });

  it("takes every type the edge sends: media.uploaded, presence.update, notification.requested", async () => {
    const events = [
      makeEvent("media.uploaded", { mediaId: "med_1", ownerId: "u1", key: "uploads/u1/med_1.mp4" }, { source: "edge", subject: "media/med_1" }),
      makeEvent("presence.update", { roomId: "lobby", userId: "u1", change: "join", connections: 1 }, { source: "edge", subject: "room/lobby" }),
      makeEvent("notification.requested", { notificationId: "n1", userId: "u1", title: "hi" }, { source: "edge", subject: "user/u1" }),
    ];
    for (const e of events) expect((await signedPost(e)).status).toBe(202);
    expect(await stored()).toBe(storedBefore + 3);
    // Types only the edge emits land in EDGE_EVENTS, which the NATS -> HTTP bridge does not consume; a finished
    // upload is a job for the media nodes' VOD workers; a type either side may emit stays in EVENTS.
    expect((await jsm.streams.getMessage("VOD_JOBS", { last_by_subj: "media.uploaded" })).json<Envelope>().id).toBe(events[0]!.id);
    expect((await jsm.streams.getMessage("EDGE_EVENTS", { last_by_subj: "presence.update" })).json<Envelope>().id).toBe(events[1]!.id);
    expect((await jsm.streams.getMessage("EVENTS", { last_by_subj: "notification.requested" })).json<Envelope>().id).toBe(events[2]!.id);
  });

  describe("refusals: a clear status, nothing stored", () => {
    it("bad signature (body changed after signing) -> 401", async () => {
      const e = chat();
      const headers = await signWebhook(SECRET, e.id, JSON.stringify(e));
      const reply = await post(JSON.stringify({ ...e, data: { ...e.data, text: "tampered" } }), headers);
      expect(reply).toMatchObject({ status: 401, body: { ok: false, error: "bad-signature" } });
      expect(await stored()).toBe(storedBefore);
    });

    it("wrong secret -> 401", async () => {
      const reply = await signedPost(chat(), { secret: "some-other-secret-0123456789" });
      expect(reply).toMatchObject({ status: 401, body: { error: "bad-signature" } });
      expect(await stored()).toBe(storedBefore);
    });

    it("no signature headers -> 401", async () => {
      const reply = await post(JSON.stringify(chat()), {});
      expect(reply).toMatchObject({ status: 401, body: { error: "missing-headers" } });
      expect(await stored()).toBe(storedBefore);
    });

    it("stale timestamp (a replay from 10 minutes ago) -> 401, and a future one too", async () => {
      const old = await signedPost(chat(), { ts: Math.floor(Date.now() / 1000) - 600 });
      expect(old).toMatchObject({ status: 401, body: { error: "stale-timestamp" } });
      const future = await signedPost(chat(), { ts: Math.floor(Date.now() / 1000) + 600 });
      expect(future).toMatchObject({ status: 401, body: { error: "future-timestamp" } });
      expect(await stored()).toBe(storedBefore);
    });

    it("malformed body (signed, but not JSON / not an envelope) -> 400", async () => {
      const notJson = await signedPost(null, { id: "evt_x", body: "{not json" });
      expect(notJson).toMatchObject({ status: 400, body: { error: "malformed-body" } });
      expect(notJson.body.message).toMatch(/not valid JSON/);
      const notEnvelope = await signedPost({ id: "evt_y", hello: "world" });
      expect(notEnvelope).toMatchObject({ status: 400, body: { error: "malformed-body" } });
      expect(notEnvelope.body.message).toMatch(/malformed envelope/);
      expect(await stored()).toBe(storedBefore);
    });

    it("unknown type -> 422; a known type the edge may not send -> 422; bad data -> 422", async () => {
      const unknown = await signedPost({ ...chat(), type: "chat.exploded" });
      expect(unknown).toMatchObject({ status: 422, body: { error: "invalid-event" } });
      expect(unknown.body.message).toMatch(/unknown event type 'chat.exploded'/);
      const live = makeEvent("stream.live", { streamId: "s1", nodeId: "n1", playbackUrl: "https://cdn.example/s1.m3u8", renditions: [] }, { source: "edge", subject: "stream/s1" });
      const notAccepted = await signedPost(live);
      expect(notAccepted).toMatchObject({ status: 422, body: { error: "type-not-accepted" } });
      const badData = await signedPost({ ...chat(), data: { roomId: "lobby", text: 5 } });
      expect(badData).toMatchObject({ status: 422, body: { error: "invalid-event" } });
      expect(await stored()).toBe(storedBefore);
    });

    it("webhook-id other than the event id -> 400", async () => {
      const reply = await signedPost(chat(), { id: "evt_not_the_same" });
      expect(reply).toMatchObject({ status: 400, body: { error: "id-mismatch" } });
      expect(await stored()).toBe(storedBefore);
    });

    it("oversized body -> 413 without reading it", async () => {
      const big = JSON.stringify({ ...chat(), data: { pad: "x".repeat(MAX_EVENT_BYTES) } });
      const reply = await signedPost(null, { id: "evt_big", body: big });
      expect(reply).toMatchObject({ status: 413, body: { error: "too-large" } });
      expect(await stored()).toBe(storedBefore);
    });

    it("other paths and methods -> 404 / 405", async () => {
      expect((await fetch(bridge.url.replace("/events", "/nope"), { method: "POST" })).status).toBe(404);
      expect((await fetch(bridge.url)).status).toBe(405);
    });
  });

  describe("batches (one signed request, per-event results)", () => {
    async function postBatch(body: string, opts: { secret?: string; ts?: number } = {}) {
      const headers = await signWebhook(opts.secret ?? SECRET, newBatchId(), body, opts.ts);
      const res = await fetch(bridge.url, { method: "POST", headers: { "content-type": BATCH_CONTENT_TYPE, ...headers }, body });
      return { status: res.status, body: (await res.json()) as { results?: EventResult[]; ok?: boolean; error?: string; message?: string } };
    }
    async function lastStored(count: number): Promise<Envelope[]> {
      // Only chat messages here: they are in EDGE_EVENTS.
      const { state } = await jsm.streams.info("EDGE_EVENTS");
      const out: Envelope[] = [];
      for (let seq = state.last_seq - count + 1; seq <= state.last_seq; seq++) out.push((await jsm.streams.getMessage("EDGE_EVENTS", { seq })).json<Envelope>());
      return out;
    }

    it("stores every event of a batch in order, each with its id as Nats-Msg-Id, and answers 200 stored / duplicate per event", async () => {
      const events = Array.from({ length: 100 }, (_, i) => chat(`batch ${i}`));
      const reply = await postBatch(batchBody(events));
      expect(reply.status).toBe(200);
      expect(reply.body.results).toEqual(events.map((e) => ({ id: e.id, status: "stored" })));
      expect(await stored()).toBe(storedBefore + 100);
      expect((await lastStored(100)).map((e) => e.id)).toEqual(events.map((e) => e.id));
      const msg = await jsm.streams.getMessage("EDGE_EVENTS", { last_by_subj: "chat.message" });
      expect(msg.header.get("Nats-Msg-Id")).toBe(events[99]!.id);
      // The outbox retried the same batch (say its answer was lost): all duplicates, nothing stored twice.
      const again = await postBatch(batchBody(events.slice(0, 3)));
      expect(again.body.results!.map((r) => r.status)).toEqual(["duplicate", "duplicate", "duplicate"]);
      expect(await stored()).toBe(storedBefore + 100);
    });

    it("mixed good and bad items: each bad one rejected with its reason, the good ones stored", async () => {
      const good = [chat("first"), chat("second")];
      const live = makeEvent("stream.live", { streamId: "s1", nodeId: "n1", playbackUrl: "https://cdn.example/s1.m3u8", renditions: [] }, { source: "edge", subject: "stream/s1" });
      const body = JSON.stringify({ batch: [good[0], { ...chat(), type: "chat.exploded" }, { ...chat(), data: { roomId: "lobby", text: 5 } }, "not an event", live, good[1]] });
      const reply = await postBatch(body);
      expect(reply.status).toBe(200);
      expect(reply.body.results!.map((r) => [r.status, r.code ?? null])).toEqual([
        ["stored", null],
        ["rejected", "unknown_event_type"],
        ["rejected", "malformed_event"],
        ["rejected", "malformed_event"],
        ["rejected", "type_not_accepted"],
        ["stored", null],
      ]);
      expect(reply.body.results![3]!.id).toBe("#3");
      expect(await stored()).toBe(storedBefore + 2);
      expect((await lastStored(2)).map((e) => e.id)).toEqual(good.map((e) => e.id));
    });

    it("bad signature, wrong secret, stale timestamp -> 401, nothing stored", async () => {
      const body = batchBody([chat()]);
      const headers = await signWebhook(SECRET, newBatchId(), body);
      const tampered = await fetch(bridge.url, { method: "POST", headers: { "content-type": BATCH_CONTENT_TYPE, ...headers }, body: batchBody([chat("tampered")]) });
      expect(tampered.status).toBe(401);
      expect(((await tampered.json()) as { error: string }).error).toBe("bad-signature");
      expect(await postBatch(body, { secret: "some-other-secret-0123456789" })).toMatchObject({ status: 401, body: { error: "bad-signature" } });
      expect(await postBatch(body, { ts: Math.floor(Date.now() / 1000) - 600 })).toMatchObject({ status: 401, body: { error: "stale-timestamp" } });
      expect(await stored()).toBe(storedBefore);
    });

    it("malformed batch (not JSON, not {batch:[...]}, empty, more than 100 events) -> 400 malformed-batch, nothing stored", async () => {
      for (const body of ["{not json", JSON.stringify([chat()]), '{"batch":[]}', JSON.stringify({ batch: Array.from({ length: 101 }, () => chat()) })]) {
        const reply = await postBatch(body);
        expect(reply, body.slice(0, 40)).toMatchObject({ status: 400, body: { ok: false, error: "malformed-batch" } });
        expect(reply.body.message).toBeTruthy();
      }
      expect(await stored()).toBe(storedBefore);
    });

    it("oversized batch (past MAX_BATCH_BYTES) -> 413 without reading it, nothing stored; a batch larger than one event's limit is fine", async () => {
      const big = JSON.stringify({ batch: [{ ...chat(), data: { pad: "x".repeat(MAX_BATCH_BYTES) } }] });
      expect(await postBatch(big)).toMatchObject({ status: 413, body: { error: "too-large" } });
      expect(await stored()).toBe(storedBefore);
      // 100 events of ~1 KiB: past the single-event limit of 64 KiB, well within a batch's.
      const events = Array.from({ length: 100 }, (_, i) => chat(`${i} ${"y".repeat(1000)}`));
      expect(batchBody(events).length).toBeGreaterThan(MAX_EVENT_BYTES);
      expect((await postBatch(batchBody(events))).status).toBe(200);
      expect(await stored()).toBe(storedBefore + 100);
    });
  });

  it("answers 503 (so the edge's outbox retries) while NATS is down, and stores again once it is back", async () => {
    const e = chat("during outage");
    await nats.process.kill();
    const down = await signedPost(e);
    expect(down).toMatchObject({ status: 503, body: { error: "not-stored" } });
    // A batch while NATS is away: 503 as a whole (the outbox keeps all of it), not 200 with every event failed.
    const batch = batchBody([chat("batch during outage")]);
    const batchDown = await fetch(bridge.url, { method: "POST", headers: { "content-type": BATCH_CONTENT_TYPE, ...(await signWebhook(SECRET, newBatchId(), batch)) }, body: batch });
    expect(batchDown.status).toBe(503);
    expect(((await batchDown.json()) as { error: string }).error).toBe("not-stored");
    await nats.restart();
    // The bridge reconnects on its own; the edge's retry then succeeds.
    const reply = await waitFor("the bridge storing again after NATS restarted", async () => {
      const r = await signedPost(e);
      return r.status < 300 ? r : null;
    });
    expect(reply.body.ok).toBe(true);
    const msg = await jsm.streams.getMessage("EDGE_EVENTS", { last_by_subj: "chat.message" });
    expect(msg.json<Envelope>().id).toBe(e.id);
  });
});
