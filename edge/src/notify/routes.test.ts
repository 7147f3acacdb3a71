import { exports } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { env, jwtFor, newUser, notificationEvent } from "../../test/clients.ts";
import { classifyPushStatus, retryAfterMs } from "./push-send.ts";
import { pushPayloadProblem } from "./push-message.ts";
import { unsubscribeUrl } from "./unsubscribe.ts";
import { installFakeBridge } from "../../test/fake-bridge.ts";

// The answers these tests cause (notification.sent) must not reach the network: a fake bridge takes them.
beforeAll(() => {
  installFakeBridge(env.BRIDGE_URL!, env.BRIDGE_INGRESS_SECRET!);
});

const edge = (path: string, init?: RequestInit) => exports.default.fetch(`http://edge${path}`, init);
const as = async (user: string, method: string, path: string, body?: string) =>
  edge(path, { method, headers: { authorization: `Bearer ${await jwtFor(user)}`, "content-type": "application/json" }, ...(body !== undefined && { body }) });
const code = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

// A browser-shaped subscription (keys from a real P-256 point and 16 random bytes). No test here sends a push:
// nothing is stored for these users, so their inboxes never plan one.
const sub = {
  endpoint: "https://push.example.test/abc",
  expirationTime: null,
  keys: { p256dh: "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4", auth: "BTBZMqHH6r4Tts7J_aSIgg" },
};

describe("push subscription routes", () => {
  it("serves the service worker that shows pushes", async () => {
    const res = await edge("/push/sw.js");
    expect(res.headers.get("content-type")).toMatch(/^text\/javascript/);
    const js = await res.text();
    expect(js).toContain('addEventListener("push"');
    expect(js).toContain("showNotification");
  });

  it("serves the VAPID public key", async () => {
    expect(await (await edge("/push/vapid-public-key")).json()).toEqual({ publicKey: env.VAPID_PUBLIC_KEY });
  });

  it("adds a device (201), knows it again by endpoint (200), lists it without keys, deletes it (204, then 404)", async () => {
    const user = newUser("subs");
    const first = await as(user, "POST", "/push/subscriptions", JSON.stringify(sub));
    expect(first.status).toBe(201);
    const { id } = (await first.json()) as { id: string };
    expect(id).toMatch(/^sub_[0-9a-f]{32}$/);
    const again = await as(user, "POST", "/push/subscriptions", JSON.stringify(sub));
    expect(again.status).toBe(200);
    expect(((await again.json()) as { id: string }).id).toBe(id);
    const list = (await (await as(user, "GET", "/push/subscriptions")).json()) as { subscriptions: Record<string, unknown>[] };
    expect(list.subscriptions).toEqual([{ id, endpoint: sub.endpoint, expirationTime: null, createdAt: expect.any(Number), lastOkAt: null }]);
    // another user cannot delete it
    expect((await as(newUser("other"), "DELETE", `/push/subscriptions/${id}`)).status).toBe(404);
    expect((await as(user, "DELETE", `/push/subscriptions/${id}`)).status).toBe(204);
    expect((await as(user, "DELETE", `/push/subscriptions/${id}`)).status).toBe(404);
  });

  it.each([
    ["no JSON", "{", 400, "bad_json"],
    ["no keys", JSON.stringify({ endpoint: sub.endpoint }), 400, "invalid_subscription"],
    ["a short p256dh", JSON.stringify({ ...sub, keys: { ...sub.keys, p256dh: "BCVx" } }), 400, "invalid_subscription"],
    ["an ftp endpoint", JSON.stringify({ ...sub, endpoint: "ftp://push.example.test/x" }), 400, "invalid_subscription"],
    ["a huge body", JSON.stringify({ ...sub, pad: "x".repeat(9000) }), 413, "body_too_large"],
  ])("refuses %s", async (_what, body, status, errorCode) => {
    const res = await as(newUser("badsub"), "POST", "/push/subscriptions", body);
    expect(res.status).toBe(status);
    expect(await code(res)).toBe(errorCode);
  });

  it("needs a login", async () => {
    expect((await edge("/push/subscriptions", { method: "POST", body: JSON.stringify(sub) })).status).toBe(401);
    expect((await edge("/notifications/preferences")).status).toBe(401);
  });
});

describe("preferences routes", () => {
  it("answers defaults, takes a full object, refuses bad ones with the field named", async () => {
    const user = newUser("prefs");
    expect(await (await as(user, "GET", "/notifications/preferences")).json()).toEqual({ timeZone: "UTC", quietHours: null, email: null, defaults: { push: true, email: false }, kinds: {} });
    const put = await as(user, "PUT", "/notifications/preferences", JSON.stringify({ timeZone: "Europe/Paris", quietHours: { start: "22:00", end: "07:30" }, email: "me@example.test", kinds: { "media.ready": { email: true } } }));
    expect(put.status).toBe(200);
    expect(((await (await as(user, "GET", "/notifications/preferences")).json()) as { timeZone: string }).timeZone).toBe("Europe/Paris");
    const bad = await as(user, "PUT", "/notifications/preferences", JSON.stringify({ timeZone: "Nowhere/Else" }));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string; message: string } }).error).toEqual({ code: "invalid_preferences", message: "timeZone: unknown IANA time zone" });
  });

  it("the unsubscribe link: forged or another user's refused, GET changes nothing, POST turns email off", async () => {
    const user = newUser("unsub");
    await as(user, "PUT", "/notifications/preferences", JSON.stringify({ email: "u@example.test", defaults: { push: true, email: true } }));
    const link = new URL(await unsubscribeUrl("http://edge", env.UNSUBSCRIBE_SECRET!, user));
    const path = `${link.pathname}${link.search}`;
    expect((await edge(`/notifications/unsubscribe?u=${user}&s=forged`, { method: "POST" })).status).toBe(403);
    expect((await edge(path.replace(`u=${user}`, "u=someone-else"), { method: "POST" })).status).toBe(403);
    expect((await edge(path)).status).toBe(200);
    const prefs = async () => ((await (await as(user, "GET", "/notifications/preferences")).json()) as { defaults: { email: boolean } }).defaults.email;
    expect(await prefs()).toBe(true);
    expect((await edge(path, { method: "POST" })).status).toBe(200);
    expect(await prefs()).toBe(false);
  });
});

describe("push answers and payload limits (pure)", () => {
  it("classifies push service answers", () => {
    expect(classifyPushStatus(201, null)).toEqual({ kind: "ok", status: 201 });
    expect(classifyPushStatus(410, null)).toEqual({ kind: "gone", status: 410 });
    expect(classifyPushStatus(404, null)).toEqual({ kind: "gone", status: 404 });
    expect(classifyPushStatus(429, "7")).toEqual({ kind: "retry", reason: "push service answered 429", retryAfterMs: 7000 });
    expect(classifyPushStatus(503, null)).toEqual({ kind: "retry", reason: "push service answered 503" });
    expect(classifyPushStatus(413, null).kind).toBe("failed");
    expect(classifyPushStatus(403, null).kind).toBe("failed");
    expect(retryAfterMs("Wed, 21 Oct 2026 07:28:00 GMT", Date.parse("Wed, 21 Oct 2026 07:27:00 GMT"))).toBe(60_000);
    expect(retryAfterMs("soon")).toBeUndefined();
  });

  it("measures the payload in UTF-8 bytes", () => {
    expect(pushPayloadProblem({ id: "n", kind: "k", title: "t", body: "a".repeat(1000) }, 3072)).toBeNull();
    expect(pushPayloadProblem({ id: "n", kind: "k", title: "t", body: "é".repeat(1600) }, 3072)).toMatch(/over the 3072-byte limit/);
  });

  it("refuses an oversized notification at the internal API with 413, storing nothing", async () => {
    const user = newUser("big");
    const event = notificationEvent(user, { title: "big" });
    event.data.body = "€".repeat(1500);
    const res = await edge(`/internal/users/${user}/notifications`, { method: "POST", headers: { authorization: `Bearer ${env.INTERNAL_API_TOKEN}`, "content-type": "application/json" }, body: JSON.stringify(event) });
    expect(res.status).toBe(413);
    expect(await code(res)).toBe("push_payload_too_large");
    expect(await env.Inbox.getByName(user).unread()).toBe(0);
  });
});

describe("inbox cost per batch", () => {
  it("stores 100 notifications for a connected-or-not user with a fixed number of SQL statements, not one count per notification", async () => {
    const user = newUser("sqlcount");
    const inbox = env.Inbox.getByName(user);
    await inbox.unread(); // wake it: its tables exist before counting
    const counts = await runInDurableObject(inbox, async (instance, state) => {
      const sql = state.storage.sql;
      const statements: string[] = [];
      const exec = sql.exec.bind(sql);
      (sql as { exec: typeof sql.exec }).exec = ((query: string, ...args: unknown[]) => {
        statements.push(query);
        return exec(query, ...(args as []));
      }) as typeof sql.exec;
      try {
        const events = Array.from({ length: 100 }, (_, i) => notificationEvent(user, { title: `n${i}` }));
        await instance.applyEvents(events);
      } finally {
        (sql as { exec: typeof sql.exec }).exec = exec;
      }
      return { total: statements.length, counts: statements.filter((q) => /COUNT\(\*\)/i.test(q)).length };
    });
    expect(counts.counts).toBeLessThanOrEqual(3);
    // per notification: the ledger row, the insert, the outbox row (and a planned push when a device exists)
    expect(counts.total).toBeLessThan(100 * 4);
  });
});

describe("the event ingress and oversized notifications", () => {
  it("refuses one for good (413, which the bridge dead-letters) instead of retrying it", async () => {
    const { signWebhook } = await import("../../../shared/signing/webhooks.ts");
    const user = newUser("bigbus");
    const event = notificationEvent(user, { title: "big" });
    event.data.body = "€".repeat(1500);
    const body = JSON.stringify(event);
    const res = await edge("/hooks/events", { method: "POST", headers: { "content-type": "application/json", ...(await signWebhook(env.EDGE_INGRESS_SECRET!, event.id, body)) }, body });
    expect(res.status).toBe(413);
    expect(await code(res)).toBe("push_payload_too_large");
    expect(await env.Inbox.getByName(user).unread()).toBe(0);
  });
});
