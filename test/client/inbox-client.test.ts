import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { InboxClient } from "../../shared/client/inbox-client.ts";
import type { WebSocketCtor } from "../../shared/client/room-client.ts";
import { makeEvent } from "../../shared/envelope.ts";
import { type EdgeServer, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import { waitFor } from "../helpers/wait.ts";

// InboxClient in Node against the real edge: unread count from the welcome, live notifications, mark read
// (seen by the user's other device), and a token refused in words.
describe("InboxClient against the real edge", () => {
  let edge: EdgeServer;
  const clients: InboxClient[] = [];
  let n = 0;
  const user = () => `inbox-client-${Date.now().toString(36)}-${n++}`;
  const token = (sub: string, expiresIn = 3600) => mintHs256(TEST_SECRETS.JWT_SECRET, { sub, expiresIn });
  const notify = (userId: string, title: string) =>
    fetch(`${edge.url}/internal/users/${userId}/notifications`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_SECRETS.INTERNAL_API_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(makeEvent("notification.requested", { notificationId: `n-${n++}`, userId, title }, { source: "client-test", subject: `user/${userId}` })),
    });
  const open = (opts: ConstructorParameters<typeof InboxClient>[0]) => {
    const c = new InboxClient(opts);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    edge = await startEdge();
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await edge?.stop();
  });

  it("counts unread, receives live, marks read on every device", async () => {
    const id = user();
    expect((await notify(id, "while away")).status).toBe(200);
    const phone = open({ baseUrl: edge.url, token: await token(id) });
    const laptop = open({ baseUrl: edge.url, token: await token(id) });
    expect((await phone.connect()).unread).toBe(1);
    await laptop.connect();
    expect(phone.notifications.map((x) => x.title)).toEqual(["while away"]);

    const live = phone.once("notification");
    await notify(id, "live one");
    expect((await live).title).toBe("live one");
    await waitFor("laptop counts two", () => laptop.unread === 2);

    expect(await phone.markAllRead()).toMatchObject({ unread: 0 });
    expect(phone.unread).toBe(0);
    await waitFor("laptop hears the read", () => laptop.unread === 0 && laptop.notifications.every((x) => x.read));
  });

  it("a dropped socket reconnects and the welcome brings what arrived meanwhile", async () => {
    const id = user();
    const sockets: WebSocket[] = [];
    class Tracked extends WebSocket {
      constructor(url: string, protocols: string[]) {
        super(url, protocols);
        sockets.push(this);
      }
    }
    let release!: () => void;
    let gate = Promise.resolve();
    const jwt = await token(id);
    const c = open({ baseUrl: edge.url, WebSocket: Tracked as unknown as WebSocketCtor, token: async (reason) => (reason === "connect" ? jwt : (await gate, jwt)) });
    expect((await c.connect()).unread).toBe(0);
    gate = new Promise((resolve) => (release = resolve));
    sockets.at(-1)!.terminate();
    await c.once("status", (s) => s.state === "reconnecting");
    await notify(id, "while the socket was down");
    const back = c.once("welcome");
    release();
    expect((await back).unread).toBe(1);
    expect(c.unread).toBe(1);
    expect(c.notifications.map((x) => x.title)).toEqual(["while the socket was down"]);
  });

  it("an expired fixed token fails with its reason", async () => {
    const c = open({ baseUrl: edge.url, token: await token(user(), -120) });
    await expect(c.connect()).rejects.toMatchObject({ code: "token_expired" });
  });
});
