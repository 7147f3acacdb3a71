import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { RoomClient, type RoomClientOptions, type WebSocketCtor } from "../../shared/client/room-client.ts";
import type { TokenReason } from "../../shared/client/token.ts";
import { type EdgeServer, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import { waitFor } from "../helpers/wait.ts";

// RoomClient in Node against the real edge (wrangler dev): chat and presence between clients, a socket dropped
// mid-chat, a resume that finds more missed messages than the room replays (ROOM_RESUME_MAX is small here), a
// reconnect storm after an edge restart, token refresh, and a ban.

/** `ws` sockets with a handle on each one opened, so a test can drop one the way a network would. */
function droppableSockets() {
  const sockets: WebSocket[] = [];
  class Tracked extends WebSocket {
    constructor(url: string, protocols: string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  return {
    Ctor: Tracked as unknown as WebSocketCtor,
    sockets,
    /** the socket in use, cut without a close frame */
    drop() {
      const open = sockets.filter((s) => s.readyState === WebSocket.OPEN);
      expect(open.length).toBe(1);
      open[0]!.terminate();
    },
  };
}

/**
 * A token callback that holds reconnects until released: the client stays away, deterministically, while the
 * test sends what it must miss (no race against its backoff timer).
 */
function gatedToken(token: string) {
  let release!: () => void;
  let gate = Promise.resolve();
  return {
    source: async (reason: TokenReason) => {
      if (reason !== "connect") await gate;
      return token;
    },
    hold() {
      gate = new Promise((resolve) => (release = resolve));
    },
    release: () => release(),
  };
}

const RESUME_MAX = 5;
const WELCOME_MESSAGES = 3;

describe("RoomClient against the real edge", () => {
  let edge: EdgeServer;
  const clients: RoomClient[] = [];
  let n = 0;
  const roomId = () => `client-${Date.now().toString(36)}-${n++}`;
  const token = (sub: string, extra: Record<string, unknown> = {}, expiresIn = 3600) => mintHs256(TEST_SECRETS.JWT_SECRET, { sub, expiresIn, claims: { name: sub, ...extra } });
  const client = (room: string, opts: Partial<RoomClientOptions> & { token: RoomClientOptions["token"] }) => {
    const c = new RoomClient({ baseUrl: edge.url, roomId: room, WebSocket: WebSocket as unknown as WebSocketCtor, ...opts });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    edge = await startEdge({ ROOM_RESUME_MAX: String(RESUME_MAX), ROOM_WELCOME_MESSAGES: String(WELCOME_MESSAGES) });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await edge?.stop();
  });

  it("two users chat, see each other with tab counts and state, and see aggregated reactions", async () => {
    const room = roomId();
    const alice = client(room, { token: await token("alice") });
    const aliceTab2 = client(room, { token: await token("alice") });
    const bob = client(room, { token: await token("bob") });
    await alice.connect();
    await bob.connect();
    await aliceTab2.connect();
    await waitFor("bob sees alice with two tabs", () => bob.presence.get("alice")?.connections === 2);
    expect(bob.presenceCount).toBe(2);

    const sent = await alice.send("hello bob");
    expect(sent).toMatchObject({ userId: "alice", text: "hello bob" });
    await waitFor("bob has alice's message", () => bob.messages.some((m) => m.id === sent.id));
    const reply = await bob.send("hi alice");
    expect(reply.id).toBeGreaterThan(sent.id);
    await waitFor("alice has the reply", () => alice.messages.at(-1)?.id === reply.id);
    expect(alice.messages.map((m) => m.text)).toEqual(["hello bob", "hi alice"]);

    bob.setPresence({ typing: true });
    await waitFor("alice sees bob typing", () => alice.presence.get("bob")?.state.typing === true);

    // Counts are per flush window: two reactions may land in one frame or in two.
    let fire = 0;
    alice.on("reactions", (r) => (fire += r.counts["🔥"] ?? 0));
    bob.react("🔥");
    bob.react("🔥");
    await waitFor("alice counted both reactions", () => fire === 2);

    aliceTab2.close();
    await waitFor("bob sees alice down to one tab", () => bob.presence.get("alice")?.connections === 1);
    bob.close();
    await waitFor("alice sees bob leave", () => !alice.presence.has("bob"));
  });

  it("a socket dropped mid-chat reconnects, resumes with ?since= and ends with every message once, in order", async () => {
    const room = roomId();
    const net = droppableSockets();
    const gate = gatedToken(await token("alice"));
    const alice = client(room, { token: gate.source, WebSocket: net.Ctor });
    const bob = client(room, { token: await token("bob") });
    await alice.connect();
    await bob.connect();
    for (const t of ["one", "two"]) await bob.send(t);
    await waitFor("alice has two", () => alice.messages.length === 2);

    const resumed = alice.once("welcome");
    gate.hold();
    const inFlight = alice.send("mine, sent as the socket dies");
    net.drop();
    await alice.once("status", (s) => s.state === "reconnecting");
    for (const t of ["three", "four"]) await bob.send(t);
    gate.release();
    const welcome = await resumed;
    expect(welcome.resume).toEqual({ since: 2, complete: true });
    const mine = await inFlight;
    expect(mine.userId).toBe("alice");

    await waitFor("alice has all five", () => alice.messages.length === 5);
    const ids = alice.messages.map((m) => m.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(5);
    expect(alice.messages.filter((m) => m.text === "mine, sent as the socket dies")).toHaveLength(1);
    await waitFor("bob has five too", () => bob.messages.length === 5);
  });

  it("fetches the gap over HTTP when more was missed than the room replays", async () => {
    const room = roomId();
    const net = droppableSockets();
    const gate = gatedToken(await token("alice"));
    const alice = client(room, { token: gate.source, WebSocket: net.Ctor });
    const bob = client(room, { token: await token("bob") });
    await alice.connect();
    await bob.connect();
    await bob.send("before the drop");
    await waitFor("alice has it", () => alice.messages.length === 1);

    gate.hold();
    net.drop();
    await alice.once("status", (s) => s.state === "reconnecting");
    const missed = RESUME_MAX * 3;
    for (let i = 0; i < missed; i++) await bob.send(`missed ${i}`);
    const gap = alice.once("gap", (g) => g.filled);
    gate.release();
    const filled = await gap;
    expect(filled.after).toBe(1);
    await waitFor("alice has every message", () => alice.messages.length === missed + 1);
    expect(alice.messages.map((m) => m.text)).toEqual(["before the drop", ...Array.from({ length: missed }, (_, i) => `missed ${i}`)]);
    expect(alice.messages.map((m) => m.id)).toEqual(Array.from({ length: missed + 1 }, (_, i) => i + 1));
  });

  it("asks for a fresh token after the server refused one, and says why", async () => {
    const room = roomId();
    const expired = await token("carol", {}, -120);
    const fresh = await token("carol");
    const reasons: TokenReason[] = [];
    const carol = client(room, { token: (reason) => (reasons.push(reason), reasons.length === 1 ? expired : fresh), backoff: { baseMs: 50, maxMs: 200 } });
    const errors: string[] = [];
    carol.on("error", (e) => errors.push(e.code));
    const welcome = await carol.connect();
    expect(welcome.user.userId).toBe("carol");
    expect(reasons.slice(0, 2)).toEqual(["connect", "refused"]);
    expect(errors).toContain("token_expired");
  });

  it("a fixed expired token fails in words instead of retrying for ever", async () => {
    const dave = client(roomId(), { token: await token("dave", {}, -120) });
    await expect(dave.connect()).rejects.toMatchObject({ code: "token_expired" });
    expect(dave.state).toBe("closed");
  });

  it("a banned user is told so and does not reconnect", async () => {
    const room = roomId();
    const mod = client(room, { token: await token("mod", { role: "moderator" }) });
    const eve = client(room, { token: await token("eve") });
    await mod.connect();
    await eve.connect();
    const fatal = eve.once("error", (e) => e.fatal);
    mod.ban("eve", "spam");
    expect(await fatal).toMatchObject({ code: "banned", message: "A moderator banned you from this room: spam" });
    expect(eve.state).toBe("closed");
    await waitFor("mod sees eve gone", () => !mod.presence.has("eve"));
  });

  it("a reconnect storm after an edge restart: every client comes back, resumes and sees everyone", async () => {
    const room = roomId();
    const crowd = await Promise.all(Array.from({ length: 20 }, async (_, i) => client(room, { token: await token(`fan-${i}`), backoff: { baseMs: 200, maxMs: 2000 } })));
    await Promise.all(crowd.map((c) => c.connect()));
    await waitFor("everyone sees everyone", () => crowd.every((c) => c.presence.size === 20), 30_000);
    const before = await crowd[0]!.send("before the restart");
    // The sender's ack comes before the others' copies: each client resumes from the last message it has, so the
    // restart waits until every client has this one.
    await waitFor("every client has the message before the restart", () => crowd.every((c) => c.messages.at(-1)?.id === before.id), 30_000);

    const reconnected = crowd.map((c) => c.once("welcome"));
    await edge.restart();
    const welcomes = await Promise.all(reconnected);
    expect(welcomes.every((w) => w.resume?.since === before.id)).toBe(true);
    const after = await crowd[1]!.send("after the restart");
    await waitFor("every client has both messages and the full room", () => crowd.every((c) => c.messages.at(-1)?.id === after.id && c.presence.size === 20), 30_000);
    for (const c of crowd) expect(c.messages.filter((m) => m.id === before.id)).toHaveLength(1);
  }, 180_000);
});
