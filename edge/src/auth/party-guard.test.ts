import { runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { env, join, newRoom, tokenFor, upgrade, wrapSocket } from "../../test/clients.ts";
import { VERIFIED_CLAIMS_HEADER } from "./claims.ts";

async function errorOf(res: Response) {
  expect(res.headers.get("content-type")).toContain("application/json");
  return ((await res.json()) as { error: { code: string; message: string } }).error;
}

describe("front routing: refusals before any object is reached", () => {
  it("refuses an upgrade without a token, or with a bad one, with 401 and a JSON body", async () => {
    const room = newRoom();
    const missing = await upgrade(`/parties/room/${room}`);
    expect(missing.status).toBe(401);
    expect((await errorOf(missing)).code).toBe("missing_token");

    const expired = await upgrade(`/parties/room/${room}`, { token: await tokenFor("alice", { expiresIn: -3600 }) });
    expect(expired.status).toBe(401);
    expect(await errorOf(expired)).toEqual({ code: "token_expired", message: "token has expired" });

    const garbage = await upgrade(`/parties/room/${room}?token=not-a-jwt`);
    expect(garbage.status).toBe(401);
    expect((await errorOf(garbage)).code).toBe("malformed_token");
  });

  it("enforces the token's room restriction and the inbox owner", async () => {
    const token = await tokenFor("alice", { claims: { rooms: ["team-*"] } });
    const allowed = await upgrade(`/parties/room/team-${newRoom()}`, { token });
    expect(allowed.status).toBe(101);
    allowed.webSocket!.accept();
    allowed.webSocket!.close(1000, "done");

    const forbidden = await upgrade(`/parties/room/${newRoom()}`, { token });
    expect(forbidden.status).toBe(403);
    expect((await errorOf(forbidden)).code).toBe("room_forbidden");

    const otherInbox = await upgrade("/parties/inbox/bob", { token: await tokenFor("alice") });
    expect(otherInbox.status).toBe(403);
    expect((await errorOf(otherInbox)).code).toBe("inbox_forbidden");
  });

  it("refuses unsafe room ids and parties that are not public", async () => {
    const token = await tokenFor("alice");
    for (const bad of ["a..b", "-leading-dash", "x%2F..%2Fy"]) {
      const res = await upgrade(`/parties/room/${bad}`, { token });
      expect(res.status, bad).toBe(400);
      expect((await errorOf(res)).code).toBe("invalid_room_id");
    }
    const outbox = await upgrade("/parties/event-outbox/anything", { token });
    expect(outbox.status).toBe(404);
    expect((await errorOf(outbox)).code).toBe("not_found");
  });
});

describe("front routing: partyserver trust fixes", () => {
  it("ignores forged verified-claims and partykit headers: the object sees only the token's user", async () => {
    const token = await tokenFor("alice");
    const res = await upgrade(`/parties/room/${newRoom()}`, {
      token,
      headers: {
        [VERIFIED_CLAIMS_HEADER]: encodeURIComponent(JSON.stringify({ userId: "mallory", role: "moderator", exp: 9e9 })),
        "x-partykit-props": JSON.stringify({ admin: true }),
        "x-partykit-room": "someone-elses-room",
      },
    });
    const client = wrapSocket(res.webSocket!);
    const welcome = await client.next("welcome");
    expect(welcome.user).toEqual({ userId: "alice", role: "member" });
    client.close();
  });

  it("chooses connection ids itself (a client's _pk is ignored) and keeps neither the token nor other query in the socket", async () => {
    const room = newRoom();
    const token = await tokenFor("alice");
    const a = wrapSocket((await upgrade(`/parties/room/${room}?_pk=same&token=${token}&junk=${"x".repeat(2000)}`)).webSocket!);
    const b = wrapSocket((await upgrade(`/parties/room/${room}?_pk=same&token=${token}`)).webSocket!);
    const [wa, wb] = [await a.next("welcome"), await b.next("welcome")];
    expect(wa.connectionId).not.toBe("same");
    expect(wb.connectionId).not.toBe(wa.connectionId);

    const uris = await runInDurableObject(env.Room.getByName(room), (_instance, state) =>
      // partyserver wraps deserializeAttachment; read the raw attachment it stores.
      state.getWebSockets().map((ws) => (WebSocket.prototype.deserializeAttachment.call(ws) as { __pk: { uri: string } }).__pk.uri),
    );
    expect(uris).toHaveLength(2);
    for (const uri of uris) {
      const url = new URL(uri);
      expect([...url.searchParams.keys()]).toEqual(["_pk"]);
      expect(uri).not.toContain(token);
    }
    a.close();
    b.close();
  });

  it("takes the token from Sec-WebSocket-Protocol and answers with an offered subprotocol", async () => {
    const token = await tokenFor("alice");
    const room = newRoom();
    const withApp = await upgrade(`/parties/room/${room}`, { headers: { "sec-websocket-protocol": `pulsecast.v1, bearer.${token}` } });
    expect(withApp.status).toBe(101);
    expect(withApp.headers.get("sec-websocket-protocol")).toBe("pulsecast.v1");
    const client = wrapSocket(withApp.webSocket!);
    expect((await client.next("welcome")).user.userId).toBe("alice");
    client.close();

    const onlyToken = await upgrade(`/parties/room/${room}`, { headers: { "sec-websocket-protocol": `bearer.${token}` } });
    expect(onlyToken.headers.get("sec-websocket-protocol")).toBe(`bearer.${token}`);
    onlyToken.webSocket!.accept();
    onlyToken.webSocket!.close(1000, "done");

    const bad = await upgrade(`/parties/room/${room}`, { headers: { "sec-websocket-protocol": "pulsecast.v1, bearer.nope" } });
    expect(bad.status).toBe(401);
  });

  it("checks HTTP requests to a room the same way (history needs a token the room accepts)", async () => {
    const room = newRoom();
    const alice = await join(room, "alice");
    alice.send({ type: "send", text: "hi" });
    await alice.next("message");
    const token = await tokenFor("bob");
    const ok = await exports.default.fetch(`http://edge/parties/room/${room}/history`, { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { messages: { text: string }[] }).messages.map((m) => m.text)).toEqual(["hi"]);
    const restricted = await tokenFor("bob", { claims: { room: "elsewhere" } });
    const refused = await exports.default.fetch(`http://edge/parties/room/${room}/history`, { headers: { authorization: `Bearer ${restricted}` } });
    expect(refused.status).toBe(403);
    alice.close();
  });

  it("takes a token from the URL only on a WebSocket upgrade: plain HTTP needs Bearer (URLs end up in logs)", async () => {
    const room = newRoom();
    const token = await tokenFor("bob");
    const history = await exports.default.fetch(`http://edge/parties/room/${room}/history?token=${token}`);
    expect(history.status).toBe(401);
    const error = await errorOf(history);
    expect(error.code).toBe("missing_token");
    expect(error.message).toContain("Authorization: Bearer");
    const inbox = await exports.default.fetch(`http://edge/inbox?token=${await tokenFor("bob")}`);
    expect(inbox.status).toBe(401);
    expect((await errorOf(inbox)).code).toBe("missing_token");
    // The same token in the URL of an upgrade is accepted (browsers cannot set headers there).
    const upgraded = await upgrade(`/parties/room/${room}?token=${token}`);
    expect(upgraded.status).toBe(101);
    upgraded.webSocket!.accept();
    upgraded.webSocket!.close(1000, "done");
  });
});
