import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { BATCH_CONTENT_TYPE, newBatchId } from "../../../shared/batch.ts";
import { type Envelope, makeEvent } from "../../../shared/envelope.ts";
import { newId } from "../../../shared/ids.ts";
import { signWebhook } from "../../../shared/signing/webhooks.ts";
import { createApp } from "../app.ts";
import type { Env } from "../env.ts";
import { appliedIn } from "../../test/ingress.ts";
import { installFakeBridge } from "../../test/fake-bridge.ts";
import { join, tokenFor } from "../../test/clients.ts";

// Links in events reach users' browsers: only http(s) gets past the schemas, and only https: when
// ALLOW_HTTP_URLS is false (production). Refused events are never applied anywhere.

const SECRET = env.EDGE_INGRESS_SECRET!;
/** The edge as deployed: http: links refused. (The test env allows them, as local runs do.) */
const production = { ...env, ALLOW_HTTP_URLS: "false" } as Env;
const app = createApp();

beforeAll(() => {
  // notification.sent answers must not reach the network.
  installFakeBridge(env.BRIDGE_URL!, env.BRIDGE_INGRESS_SECRET!).mode = "down";
});

async function postRaw(body: string, id: string, target: Env = env as Env, contentType = "application/json") {
  const headers = await signWebhook(SECRET, id, body);
  const res = await app.request("/hooks/events", { method: "POST", headers: { ...headers, "content-type": contentType }, body }, target);
  return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string }; results?: { id: string; status: string; code?: string; message?: string }[] } };
}

/** A valid event with some of its data replaced after it was built (makeEvent itself refuses bad links). */
function withData(event: Envelope, data: Record<string, unknown>): string {
  return JSON.stringify({ ...event, data: { ...(event.data as object), ...data } });
}

const notification = (userId: string) =>
  makeEvent("notification.requested", { notificationId: newId("ntf"), userId, title: "Look", url: "https://app.example/x" }, { source: "media-node/n1", subject: `user/${userId}` });
const live = (roomId: string) =>
  makeEvent("stream.live", { streamId: newId("str"), roomId, nodeId: "n1", playbackUrl: "https://cdn.example/live/master.m3u8", renditions: [] }, { source: "media-node/n1", subject: `room/${roomId}` });

async function inboxOf(userId: string) {
  const res = await exports.default.fetch("http://edge/inbox", { headers: { authorization: `Bearer ${await tokenFor(userId)}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { notifications: unknown[] }).notifications;
}

describe("links in events at POST /hooks/events", () => {
  it("refuses a notification.requested whose url is javascript:, and stores nothing", async () => {
    const userId = newId("user");
    const event = notification(userId);
    const res = await postRaw(withData(event, { url: "javascript:alert(1)" }), event.id);
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe("malformed_event");
    expect(res.body.error?.message).toMatch(/url.*protocol 'javascript:' is not allowed/);
    expect(await appliedIn("Inbox", userId, event.id)).toBe(false);
    expect(await inboxOf(userId)).toEqual([]);
  });

  it("refuses a stream.live whose playbackUrl is javascript:, and the room shows no stream", async () => {
    const roomId = newId("room");
    const event = live(roomId);
    const res = await postRaw(withData(event, { playbackUrl: "javascript:alert(document.cookie)" }), event.id);
    expect(res.status).toBe(400);
    expect(res.body.error?.message).toMatch(/playbackUrl.*protocol 'javascript:' is not allowed/);
    expect(await appliedIn("Room", roomId, event.id)).toBe(false);
    const viewer = await join(roomId, "viewer", { role: "viewer" });
    expect(viewer.welcome.room.stream).toBeUndefined();
    viewer.close();
  });

  it("refuses other non-web links too: data:, relative paths, vodUrl", async () => {
    const event = notification(newId("user"));
    for (const url of ["data:text/html,<script>1</script>", "/inbox/x", "file:///etc/passwd"]) {
      const res = await postRaw(withData(event, { url }), event.id);
      expect([res.status, res.body.error?.code], url).toEqual([400, "malformed_event"]);
    }
    const ended = makeEvent("stream.ended", { streamId: "s1", roomId: newId("room"), nodeId: "n1", durationS: 1, reason: "publisher-left" }, { source: "m", subject: "s" });
    expect((await postRaw(withData(ended, { vodUrl: "javascript:void(0)" }), ended.id)).status).toBe(400);
  });

  it("refuses http: links unless ALLOW_HTTP_URLS is set, with its own code", async () => {
    const roomId = newId("room");
    const event = live(roomId);
    const http = withData(event, { playbackUrl: "http://cdn.example/live/master.m3u8" });
    const refused = await postRaw(http, event.id, production);
    expect(refused.status).toBe(400);
    expect(refused.body.error?.code).toBe("url_not_allowed");
    expect(refused.body.error?.message).toContain("playbackUrl: must use https:");
    expect(await appliedIn("Room", roomId, event.id)).toBe(false);
    // Local runs allow http: (the test env sets ALLOW_HTTP_URLS=true).
    expect((await postRaw(http, event.id)).status).toBe(200);
  });

  it("in a batch, refuses only the item with a bad link", async () => {
    const [good, bad] = [live(newId("room")), live(newId("room"))];
    const body = `{"batch":[${JSON.stringify(good)},${withData(bad, { playbackUrl: "http://cdn.example/x.m3u8" })}]}`;
    const res = await postRaw(body, newBatchId(), production, BATCH_CONTENT_TYPE);
    expect(res.status).toBe(200);
    expect(res.body.results?.map((r) => [r.status, r.code])).toEqual([["applied", undefined], ["rejected", "url_not_allowed"]]);
    expect(await appliedIn("Room", bad.data.roomId as string, bad.id)).toBe(false);
  });
});

describe("links on the internal push routes", () => {
  const INTERNAL = { authorization: `Bearer ${env.INTERNAL_API_TOKEN}`, "content-type": "application/json" };

  it("refuses a javascript: link in a pushed notification and a pushed room event", async () => {
    const userId = newId("user");
    const n = notification(userId);
    const res = await app.request(`/internal/users/${userId}/notifications`, { method: "POST", headers: INTERNAL, body: withData(n, { url: "javascript:alert(1)" }) }, env);
    expect(res.status).toBe(400);
    expect(await inboxOf(userId)).toEqual([]);
    const roomId = newId("room");
    const l = live(roomId);
    const pushed = await app.request(`/internal/rooms/${roomId}/events`, { method: "POST", headers: INTERNAL, body: withData(l, { playbackUrl: "javascript:alert(1)" }) }, env);
    expect(pushed.status).toBe(400);
    expect(await appliedIn("Room", roomId, l.id)).toBe(false);
    const http = await app.request(`/internal/rooms/${roomId}/events`, { method: "POST", headers: INTERNAL, body: withData(l, { playbackUrl: "http://cdn.example/x.m3u8" }) }, production);
    expect([http.status, ((await http.json()) as { error: { code: string } }).error.code]).toEqual([400, "url_not_allowed"]);
  });
});
