import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeEvent } from "../../shared/envelope.ts";
import { type InboxWireClient, openInbox, rawUpgrade } from "../helpers/ws-client.ts";
import { type EdgeServer, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { mintHs256 } from "../helpers/jwt.ts";

// The per-user inbox over the wire: real wrangler dev, real WebSocket clients, the internal notify API.
describe("inbox over the wire (wrangler dev)", () => {
  let edge: EdgeServer;
  const open: InboxWireClient[] = [];
  let counter = 0;
  const newUser = () => `wire-user-${Date.now().toString(36)}-${counter++}`;
  const token = (sub: string) => mintHs256(TEST_SECRETS.JWT_SECRET, { sub });
  const connect = async (user: string, as = user) => {
    const client = await openInbox(`${edge.wsUrl}/parties/inbox/${user}`, await token(as));
    open.push(client);
    return client;
  };
  const notify = (user: string, title: string, bearer: string = TEST_SECRETS.INTERNAL_API_TOKEN) =>
    fetch(`${edge.url}/internal/users/${user}/notifications`, {
      method: "POST",
      headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
      body: JSON.stringify(makeEvent("notification.requested", { notificationId: `n-${title}-${counter++}`, userId: user, title }, { source: "wire-test", subject: `user/${user}` })),
    });

  beforeAll(async () => {
    edge = await startEdge();
  });
  afterAll(async () => {
    await Promise.all(open.map((c) => c.close().catch(() => undefined)));
    await edge?.stop();
  });

  it("delivers to every device of the user at once, and counts them", async () => {
    const user = newUser();
    const [phone, laptop] = [await connect(user), await connect(user)];
    await phone.next("welcome");
    await laptop.next("welcome");
    const res = await notify(user, "hello");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ applied: true, connections: 2 });
    for (const device of [phone, laptop]) expect((await device.next("notification")).notification.title).toBe("hello");
    // mark read on one device: the other hears it
    phone.send({ type: "read", all: true });
    for (const device of [phone, laptop]) expect(await device.next("read")).toMatchObject({ unread: 0 });
  });

  it("keeps notifications for an offline user and hands them over on connect", async () => {
    const user = newUser();
    expect(await (await notify(user, "while away")).json()).toEqual({ applied: true, connections: 0 });
    const client = await connect(user);
    const welcome = await client.next("welcome");
    expect(welcome.unread).toBe(1);
    expect(welcome.notifications[0]?.title).toBe("while away");
  });

  it("refuses another user's token with 403 and a JSON body, and a bad internal token with 401", async () => {
    const user = newUser();
    const res = await rawUpgrade(`${edge.url}/parties/inbox/${user}`, { authorization: `Bearer ${await token("someone-else")}` });
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body).error.code).toBe("inbox_forbidden");
    const bad = await notify(user, "nope", "wrong-token");
    expect(bad.status).toBe(401);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("invalid_internal_token");
  });
});
