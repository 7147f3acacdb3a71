import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { makeEvent, MAX_EVENT_BYTES } from "../../../shared/envelope.ts";
import { env, jwtFor, newUser, notificationEvent, wrapInboxSocket as wrapSocket } from "../../test/clients.ts";

const edge = (path: string, init?: RequestInit) => exports.default.fetch(`http://edge${path}`, init);

function postInternal(userId: string, body: string, token: string | null = env.INTERNAL_API_TOKEN!) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  return edge(`/internal/users/${encodeURIComponent(userId)}/notifications`, { method: "POST", headers, body });
}

async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { error?: { code?: string; message?: string } };
  expect(body.error?.message?.length ?? 0).toBeGreaterThan(0);
  return body.error?.code ?? "(none)";
}

describe("POST /internal/users/:userId/notifications", () => {
  it("stores and delivers once per event id", async () => {
    const user = newUser("internal");
    const event = notificationEvent(user, { title: "From the system" });
    const first = await postInternal(user, JSON.stringify(event));
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ applied: true, connections: 0 });
    const again = await postInternal(user, JSON.stringify(event));
    expect(await again.json()).toEqual({ applied: false, connections: 0 });
    expect(await env.Inbox.getByName(user).unread()).toBe(1);
  });

  it.each([
    ["no token", null, 401, "invalid_internal_token"],
    ["a wrong token", "not-the-token", 401, "invalid_internal_token"],
    ["the token with a suffix", `${env.INTERNAL_API_TOKEN}x`, 401, "invalid_internal_token"],
  ])("refuses %s", async (_what, token, status, code) => {
    const user = newUser("badtoken");
    const res = await postInternal(user, JSON.stringify(notificationEvent(user)), token);
    expect(res.status).toBe(status);
    expect(await errorCode(res)).toBe(code);
    expect(await env.Inbox.getByName(user).unread()).toBe(0);
  });

  it("refuses malformed bodies with 400 and a clear error, storing nothing", async () => {
    const user = newUser("malformed");
    const valid = notificationEvent(user);
    const cases: [string, string, string][] = [
      ["not JSON", "{oops", "invalid_event"],
      ["not an envelope", JSON.stringify({ hello: "world" }), "invalid_event"],
      ["bad data", JSON.stringify({ ...valid, data: { ...valid.data, title: "" } }), "invalid_event"],
      ["unknown type", JSON.stringify({ ...valid, type: "notification.exploded" }), "invalid_event"],
      ["another event type", JSON.stringify(makeEvent("media.progress", { mediaId: "m", ownerId: user, stage: "probe", percent: 1 }, { source: "t", subject: "m" })), "unsupported_event"],
      ["another user's notification", JSON.stringify(notificationEvent("someone-else")), "user_mismatch"],
    ];
    for (const [what, body, code] of cases) {
      const res = await postInternal(user, body);
      expect(res.status, what).toBe(400);
      expect(await errorCode(res), what).toBe(code);
    }
    const badUser = await postInternal("../etc", JSON.stringify(valid));
    expect(badUser.status).toBe(400);
    expect(await errorCode(badUser)).toBe("invalid_user_id");
    const huge = await postInternal(user, JSON.stringify({ ...valid, data: { ...valid.data, body: "x".repeat(MAX_EVENT_BYTES) } }));
    expect(huge.status).toBe(413);
    expect(await errorCode(huge)).toBe("body_too_large");
    expect(await env.Inbox.getByName(user).list()).toEqual({ notifications: [], unread: 0 });
  });
});

describe("inbox over HTTP (JWT)", () => {
  async function seed(user: string, n: number) {
    for (let i = 1; i <= n; i++) await env.Inbox.getByName(user).applyEvent(notificationEvent(user, { title: `n${i}` }));
  }

  it("pages the caller's own inbox newest first, with unread count", async () => {
    const user = newUser("http");
    await seed(user, 5);
    const auth = { authorization: `Bearer ${await jwtFor(user)}` };
    const first = await edge("/inbox?limit=2", { headers: auth });
    expect(first.status).toBe(200);
    const page1 = (await first.json()) as { notifications: { title: string }[]; unread: number; nextBefore?: number };
    expect(page1.notifications.map((n) => n.title)).toEqual(["n5", "n4"]);
    expect(page1.unread).toBe(5);
    const page2 = (await (await edge(`/inbox?limit=2&before=${page1.nextBefore}`, { headers: auth })).json()) as typeof page1;
    expect(page2.notifications.map((n) => n.title)).toEqual(["n3", "n2"]);
    const page3 = (await (await edge(`/inbox?limit=2&before=${page2.nextBefore}`, { headers: auth })).json()) as typeof page1;
    expect(page3.notifications.map((n) => n.title)).toEqual(["n1"]);
    expect(page3.nextBefore).toBeUndefined();
    expect(await (await edge("/inbox/unread", { headers: auth })).json()).toEqual({ unread: 5 });
  });

  it("marks read over HTTP and live connections hear about it", async () => {
    const user = newUser("httpread");
    await seed(user, 3);
    const token = await jwtFor(user);
    const upgrade = await edge(`/parties/inbox/${user}?token=${token}`, { headers: { Upgrade: "websocket" } });
    expect(upgrade.status).toBe(101);
    const client = wrapSocket(upgrade.webSocket!);
    const welcome = await client.next("welcome");
    const res = await edge("/inbox/read", { method: "POST", headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ ids: [welcome.notifications[0]!.id] }) });
    expect(await res.json()).toEqual({ marked: 1, unread: 2 });
    expect(await client.next("read")).toMatchObject({ unread: 2 });
    const all = await edge("/inbox/read", { method: "POST", headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ all: true }) });
    expect(await all.json()).toEqual({ marked: 2, unread: 0 });
    expect((await (await edge("/inbox?unread=true", { headers: { authorization: `Bearer ${token}` } })).json()) as object).toMatchObject({ notifications: [], unread: 0 });
    client.close();
  });

  it("refuses missing tokens and bad requests with JSON errors", async () => {
    const user = newUser("httpbad");
    const auth = { authorization: `Bearer ${await jwtFor(user)}` };
    const noToken = await edge("/inbox");
    expect(noToken.status).toBe(401);
    expect(await errorCode(noToken)).toBe("missing_token");
    const forged = await edge("/inbox", { headers: { authorization: "Bearer abc.def.ghi" } });
    expect(forged.status).toBe(401);
    for (const query of ["limit=0", "limit=101", "limit=ten", "before=-1", "unread=maybe"]) {
      const res = await edge(`/inbox?${query}`, { headers: auth });
      expect(res.status, query).toBe(400);
      expect(await errorCode(res), query).toBe("invalid_query");
    }
    const cases: [string, string][] = [
      ["not json", "bad_json"],
      [JSON.stringify({}), "invalid_request"],
      [JSON.stringify({ ids: ["a"], all: true }), "invalid_request"],
      [JSON.stringify({ upTo: "3" }), "invalid_request"],
    ];
    for (const [body, code] of cases) {
      const res = await edge("/inbox/read", { method: "POST", headers: auth, body });
      expect(res.status, body).toBe(400);
      expect(await errorCode(res), body).toBe(code);
    }
    const big = await edge("/inbox/read", { method: "POST", headers: auth, body: JSON.stringify({ ids: ["x".repeat(20_000)] }) });
    expect(big.status).toBe(413);
  });
});

describe("/parties/inbox/<userId> through the front Worker", () => {
  it("lets the user's own token in, and refuses another user's token with 403", async () => {
    const user = newUser("route");
    const own = await edge(`/parties/inbox/${user}`, { headers: { Upgrade: "websocket", authorization: `Bearer ${await jwtFor(user)}` } });
    expect(own.status).toBe(101);
    const client = wrapSocket(own.webSocket!);
    expect((await client.next("welcome")).user.userId).toBe(user);

    const other = await edge(`/parties/inbox/${user}`, { headers: { Upgrade: "websocket", authorization: `Bearer ${await jwtFor("mallory")}` } });
    expect(other.status).toBe(403);
    expect(await errorCode(other)).toBe("inbox_forbidden");
    const none = await edge(`/parties/inbox/${user}`, { headers: { Upgrade: "websocket" } });
    expect(none.status).toBe(401);
    // A client cannot forge the Worker's verified-claims header to get in as someone else.
    const forged = await edge(`/parties/inbox/${user}`, {
      headers: { Upgrade: "websocket", authorization: `Bearer ${await jwtFor("mallory")}`, "x-pulsecast-verified-claims": encodeURIComponent(JSON.stringify({ userId: user, role: "member", exp: 9e9 })) },
    });
    expect(forged.status).toBe(403);
    client.close();
  });
});
