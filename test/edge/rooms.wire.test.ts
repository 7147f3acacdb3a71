import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EdgeServer, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { jwksOf, mintHs256, mintUnsigned, type TestKeyPair, testKeyPair } from "../helpers/jwt.ts";
import { type JwksServer, startJwksServer } from "./jwks-server.ts";
import { openClient, rawUpgrade, type WireClient } from "../helpers/ws-client.ts";

// Wire-level behaviour of rooms against the real edge under wrangler dev, with real WebSocket clients and a
// real JWKS endpoint. Small limits are set through vars so they can be reached quickly.
const MAX_CONNECTIONS = 3;

describe("rooms over the wire (wrangler dev)", () => {
  let edge: EdgeServer;
  let jwks: JwksServer;
  let rsa: TestKeyPair;
  let ec: TestKeyPair;
  const open: WireClient[] = [];
  let roomCounter = 0;
  const newRoom = () => `wire-${Date.now().toString(36)}-${roomCounter++}`;
  const hs = (sub: string, opts: Parameters<typeof mintHs256>[1] = {}) => mintHs256(TEST_SECRETS.JWT_SECRET, { sub, ...opts });
  const connect = async (path: string, opts: Parameters<typeof openClient>[1] = {}) => {
    const client = await openClient(`${edge.wsUrl}${path}`, opts);
    open.push(client);
    return client;
  };

  beforeAll(async () => {
    [rsa, ec] = await Promise.all([testKeyPair("RS256"), testKeyPair("ES256")]);
    jwks = await startJwksServer(jwksOf(rsa, ec).keys);
    edge = await startEdge({ JWKS_URL: jwks.url, ROOM_MAX_CONNECTIONS: String(MAX_CONNECTIONS) });
  });
  afterAll(async () => {
    await Promise.all(open.map((c) => c.close().catch(() => undefined)));
    await edge?.stop();
    await jwks?.stop();
  });

  it("refuses bad tokens on upgrade with 401 and a JSON error body", async () => {
    const room = newRoom();
    const stranger = await testKeyPair("RS256");
    const cases: [string, Record<string, string>, string][] = [
      ["no token", {}, "missing_token"],
      ["expired", { authorization: `Bearer ${await hs("a", { expiresIn: -3600 })}` }, "token_expired"],
      ["wrong secret", { authorization: `Bearer ${await mintHs256("not-the-secret-0123456789abcdef", { sub: "a" })}` }, "bad_signature"],
      ["alg none", { authorization: `Bearer ${mintUnsigned({ sub: "a" })}` }, "alg_not_allowed"],
      ["malformed", { authorization: "Bearer abc.def" }, "malformed_token"],
      ["oversized", { authorization: `Bearer ${await hs("a", { claims: { pad: "x".repeat(9000) } })}` }, "token_too_large"],
      ["key not in JWKS", { authorization: `Bearer ${await stranger.mint({ sub: "a" })}` }, "unknown_key"],
    ];
    for (const [what, headers, code] of cases) {
      const res = await rawUpgrade(`${edge.url}/parties/room/${room}`, headers);
      expect(res.status, what).toBe(401);
      expect(res.headers["content-type"], what).toContain("application/json");
      expect(JSON.parse(res.body).error.code, what).toBe(code);
    }
  });

  it("accepts RS256 and ES256 tokens through the JWKS URL, fetching the key set once", async () => {
    const room = newRoom();
    const a = await connect(`/parties/room/${room}?token=${await rsa.mint({ sub: "rs-user" })}`);
    expect((await a.next("welcome")).user.userId).toBe("rs-user");
    const b = await connect(`/parties/room/${room}?token=${await ec.mint({ sub: "ec-user" })}`);
    expect((await b.next("welcome")).user.userId).toBe("ec-user");
    const fetches = jwks.fetches();
    expect(fetches).toBeGreaterThanOrEqual(1);
    const c = await connect(`/parties/room/${room}?token=${await rsa.mint({ sub: "rs-again" })}`);
    await c.next("welcome");
    expect(jwks.fetches()).toBe(fetches); // cached per isolate
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it("takes the token as a Sec-WebSocket-Protocol and answers with pulsecast.v1", async () => {
    const client = await connect(`/parties/room/${newRoom()}`, { protocols: ["pulsecast.v1", `bearer.${await hs("proto-user")}`] });
    expect(client.ws.protocol).toBe("pulsecast.v1");
    expect((await client.next("welcome")).user.userId).toBe("proto-user");
    await client.close();
  });

  it("delivers chat between real clients and resumes a dropped client without loss", async () => {
    const room = newRoom();
    const alice = await connect(`/parties/room/${room}`, { headers: { authorization: `Bearer ${await hs("alice")}` } });
    await alice.next("welcome");
    const bob = await connect(`/parties/room/${room}`, { headers: { authorization: `Bearer ${await hs("bob")}` } });
    await bob.next("welcome");
    alice.send({ type: "send", text: "one" });
    const seen = (await bob.next("message")).message.id;
    await bob.close();
    alice.send({ type: "send", text: "two" });
    alice.send({ type: "send", text: "three" });
    await alice.next("message", (f) => f.message.text === "three");
    const back = await connect(`/parties/room/${room}?since=${seen}`, { headers: { authorization: `Bearer ${await hs("bob")}` } });
    const welcome = await back.next("welcome");
    expect(welcome.resume).toEqual({ since: seen, complete: true });
    expect(welcome.messages.map((m) => m.text)).toEqual(["two", "three"]);
    await Promise.all([alice.close(), back.close()]);
  });

  it("closes with 1009 on an oversized frame", async () => {
    const client = await connect(`/parties/room/${newRoom()}?token=${await hs("big")}`);
    await client.next("welcome");
    client.send({ type: "send", text: "x".repeat(40_000) });
    expect((await client.closed).code).toBe(1009);
  });

  it("answers a flood with rate_limited error frames, then closes with 1008", async () => {
    const client = await connect(`/parties/room/${newRoom()}?token=${await hs("flood")}`);
    await client.next("welcome");
    for (let i = 0; i < 200; i++) client.send({ type: "ping" });
    const err = await client.next("error");
    expect(err.code).toBe("rate_limited");
    expect(err.retryAfterMs).toBeGreaterThan(0);
    expect((await client.closed).code).toBe(1008);
  });

  it("refuses connections past the room's limit with 503 room_full", async () => {
    const room = newRoom();
    const token = await hs("crowd");
    const clients: WireClient[] = [];
    for (let i = 0; i < MAX_CONNECTIONS; i++) {
      const c = await connect(`/parties/room/${room}?token=${token}`);
      await c.next("welcome");
      clients.push(c);
    }
    const res = await rawUpgrade(`${edge.url}/parties/room/${room}?token=${token}`);
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body).error.code).toBe("room_full");
    await clients[0]!.close();
    // A slot frees up when someone leaves.
    const later = await connect(`/parties/room/${room}?token=${token}`);
    expect((await later.next("welcome")).presence[0]?.connections).toBe(MAX_CONNECTIONS);
    await Promise.all([...clients.slice(1), later].map((c) => c.close()));
  });
});
