import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { makeEvent } from "../../../shared/envelope.ts";
import { waitFor } from "../../../test/helpers/wait.ts";
import { ROOM_CLOSE } from "../../../shared/protocol/room.ts";
import { type FakeBridge, installFakeBridge } from "../../test/fake-bridge.ts";
import { edgeSettings } from "../settings.ts";
import type { Room } from "./room.ts";
import { env, join, newRoom, tokenFor } from "../../test/clients.ts";

/** The settings the rooms under test run with (the test env sets none of the ROOM_* vars: the defaults). */
const settings = edgeSettings(env);

describe("Room: join and presence", () => {
  it("refuses requests that did not come through the authenticating front Worker", async () => {
    const direct = await env.Room.getByName(newRoom()).fetch("http://room/parties/room/x", { headers: { Upgrade: "websocket" } });
    expect(direct.status).toBe(401);
    expect(((await direct.json()) as { error: { code: string } }).error.code).toBe("unauthenticated");
  });

  it("sends one welcome with connection id, user, presence, messages and room info", async () => {
    const room = newRoom();
    const alice = await join(room, "alice", { name: "Alice" });
    expect(alice.welcome.connectionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(alice.welcome.user).toEqual({ userId: "alice", role: "member", name: "Alice" });
    expect(alice.welcome.presence).toEqual([{ userId: "alice", role: "member", name: "Alice", connections: 1, state: {} }]);
    expect(alice.welcome.presenceTotal).toBe(1);
    expect(alice.welcome.messages).toEqual([]);
    expect(alice.welcome.room).toEqual({ roomId: room });
    expect(alice.welcome.resume).toBeUndefined();
    alice.close();
  });

  it("shows a user with several tabs once, with a connection count, and sends leave only when the last tab goes", async () => {
    const room = newRoom();
    const alice = await join(room, "alice");
    const bobTab1 = await join(room, "bob", { name: "Bob" });
    expect(bobTab1.welcome.presence.map((p) => [p.userId, p.connections]).sort()).toEqual([["alice", 1], ["bob", 1]]);
    expect((await alice.next("join", (f) => f.user.userId === "bob")).user).toMatchObject({ connections: 1, name: "Bob" });

    const bobTab2 = await join(room, "bob", { name: "Bob" });
    expect(bobTab2.welcome.presence.find((p) => p.userId === "bob")?.connections).toBe(2);
    expect((await alice.next("update")).user).toMatchObject({ userId: "bob", connections: 2 });

    bobTab1.close();
    expect((await alice.next("update", (f) => f.user.connections === 1)).user.userId).toBe("bob");
    bobTab2.close();
    expect((await alice.next("leave")).userId).toBe("bob");
    // Exactly one join and one leave for bob, however many tabs he had.
    expect(alice.received.filter((f) => f.type === "join" && f.user.userId === "bob")).toHaveLength(1);
    expect(alice.received.filter((f) => f.type === "leave" && f.userId === "bob")).toHaveLength(1);
    alice.close();
  });

  it("shares a size-limited per-user state with the room and with the user's other tabs", async () => {
    const room = newRoom();
    const alice = await join(room, "alice");
    const bob1 = await join(room, "bob");
    const bob2 = await join(room, "bob");
    bob1.send({ type: "presence", state: { status: "away", typing: true } });
    expect((await alice.next("update", (f) => f.user.state.status === "away")).user).toMatchObject({ userId: "bob", connections: 2, state: { status: "away", typing: true } });

    // A new tab of bob starts with bob's state; a newcomer sees it in the snapshot.
    const bob3 = await join(room, "bob");
    expect(bob3.welcome.presence.find((p) => p.userId === "bob")?.state).toEqual({ status: "away", typing: true });

    bob2.send({ type: "presence", state: { blob: "x".repeat(settings.roomStateMaxBytes + 1) } });
    const err = await bob2.next("error");
    expect(err).toMatchObject({ code: "state_too_large", ref: "presence" });
    bob2.send({ type: "ping", id: "still-open" });
    expect((await bob2.next("pong")).id).toBe("still-open");
    for (const c of [alice, bob1, bob2, bob3]) c.close();
  });
});

describe("Room: chat", () => {
  it("numbers, stores and broadcasts messages; viewers may not chat", async () => {
    const room = newRoom();
    const alice = await join(room, "alice", { name: "Alice" });
    const viewer = await join(room, "vera", { role: "viewer" });
    alice.send({ type: "send", text: "hello", clientId: "c1" });
    alice.send({ type: "send", text: "world" });
    const m1 = await viewer.next("message");
    const m2 = await viewer.next("message");
    expect(m1).toMatchObject({ clientId: "c1", message: { id: 1, userId: "alice", name: "Alice", text: "hello" } });
    expect(m2.message).toMatchObject({ id: 2, text: "world" });
    expect(m2.message.at).toBeGreaterThanOrEqual(m1.message.at);
    expect((await alice.next("message", (f) => f.message.id === 2)).message.text).toBe("world");

    viewer.send({ type: "send", text: "can I?" });
    expect(await viewer.next("error")).toMatchObject({ code: "forbidden", ref: "send" });
    viewer.send({ type: "comment", text: "me neither?" });
    expect(await viewer.next("error")).toMatchObject({ code: "forbidden", ref: "comment" });

    const late = await join(room, "carol");
    expect(late.welcome.messages.map((m) => m.text)).toEqual(["hello", "world"]);
    for (const c of [alice, viewer, late]) c.close();
  });

  it("gives a reconnecting client exactly the messages it missed", async () => {
    const room = newRoom();
    const alice = await join(room, "alice");
    const bob = await join(room, "bob");
    for (let i = 1; i <= 3; i++) alice.send({ type: "send", text: `m${i}` });
    const lastSeen = (await bob.next("message", (f) => f.message.text === "m3")).message.id;
    bob.close();
    await bob.closed;
    for (let i = 4; i <= 7; i++) alice.send({ type: "send", text: `m${i}` });
    await alice.next("message", (f) => f.message.text === "m7");

    const bobAgain = await join(room, "bob", { since: lastSeen });
    expect(bobAgain.welcome.resume).toEqual({ since: lastSeen, complete: true });
    expect(bobAgain.welcome.messages.map((m) => m.text)).toEqual(["m4", "m5", "m6", "m7"]);
    alice.close();
    bobAgain.close();
  });

  it("tells a client that missed more than the replay bound to refetch, and serves paged history over HTTP", async () => {
    const room = newRoom();
    // Fill history directly in the object's storage (sending 500+ frames would hit the rate limit).
    const stub = env.Room.getByName(room);
    await runInDurableObject(stub, (instance: Room) => {
      const store = (instance as unknown as { store: import("./room-store.ts").RoomStore }).store;
      for (let i = 1; i <= settings.roomResumeMax + 20; i++) store.append("alice", undefined, `m${i}`, Date.now(), settings.roomHistoryMax);
    });
    const bob = await join(room, "bob", { since: 3 });
    expect(bob.welcome.resume).toEqual({ since: 3, complete: false });
    expect(bob.welcome.messages).toHaveLength(settings.roomWelcomeMessages);
    expect(bob.welcome.messages.at(-1)?.text).toBe(`m${settings.roomResumeMax + 20}`);

    const token = await tokenFor("bob");
    const page = async (query: string) => {
      const res = await exports.default.fetch(`http://edge/parties/room/${room}/history${query}`, { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, body: (await res.json()) as { messages: { id: number; text: string }[]; nextBefore: number | null } };
    };
    const first = await page("?limit=10");
    expect(first.status).toBe(200);
    expect(first.body.messages.map((m) => m.id)).toEqual(Array.from({ length: 10 }, (_, i) => settings.roomResumeMax + 11 + i));
    const older = await page(`?before=${first.body.nextBefore}&limit=10`);
    expect(older.body.messages.at(-1)?.id).toBe(first.body.messages[0]!.id - 1);
    const oldest = await page("?before=3&limit=10");
    expect(oldest.body).toEqual({ messages: [expect.objectContaining({ id: 1 }), expect.objectContaining({ id: 2 })], nextBefore: null });

    const bad = await page("?limit=100000");
    expect(bad.status).toBe(400);
    expect(((await bad.body) as unknown as { error: { code: string } }).error.code).toBe("invalid_query");
    const anonymous = await exports.default.fetch(`http://edge/parties/room/${room}/history`);
    expect(anonymous.status).toBe(401);
    bob.close();
  });

  it("coalesces live comments and aggregates reactions into counts", async () => {
    const room = newRoom();
    const alice = await join(room, "alice", { name: "Alice" });
    const viewer = await join(room, "vera", { role: "viewer" });
    // Clicks sent back to back. How many ROOM_REACTION_FLUSH_MS windows they span depends on the machine's load,
    // so the proof of aggregation is that some frame carried more than one click, and that there were fewer
    // frames than clicks, with every click counted exactly once.
    const clicks = 40;
    for (let i = 0; i < clicks - 1; i++) viewer.send({ type: "react", emoji: "🔥" });
    alice.send({ type: "react", emoji: "👏" });
    alice.send({ type: "comment", text: "what a goal" });
    expect(await viewer.next("comment")).toMatchObject({ userId: "alice", name: "Alice", text: "what a goal" });
    const counts: Record<string, number> = {};
    let frames = 0;
    let largest = 0;
    while ((counts["🔥"] ?? 0) < clicks - 1 || !counts["👏"]) {
      const frame = await alice.next("reactions");
      frames++;
      largest = Math.max(largest, ...Object.values(frame.counts));
      for (const [emoji, n] of Object.entries(frame.counts)) counts[emoji] = (counts[emoji] ?? 0) + n;
    }
    expect(counts).toEqual({ "🔥": clicks - 1, "👏": 1 });
    expect(largest).toBeGreaterThan(1);
    expect(frames).toBeLessThan(clicks);
    alice.close();
    viewer.close();
  });

  it("sends room-wide frames of one moment as ONE `batch` message, serialized once for every socket", async () => {
    const room = newRoom();
    const watcher = await join(room, "watcher", { role: "viewer" });
    await watcher.next("join", (f) => f.user.userId === "watcher");
    // Three events applied in one call are pushed to the room's frame queue in one synchronous turn, so no flush
    // timer can cut between them: a room that sent each frame on its own would deliver three messages.
    const events = ["s1", "s2", "s3"].map((streamId) =>
      makeEvent("stream.started", { streamId, roomId: room, nodeId: "n", app: "live" }, { source: "media-node/n", subject: `stream/${streamId}` }),
    );
    const before = watcher.rawCount();
    expect((await env.Room.getByName(room).applyEvents(events)).map((o) => o.applied)).toEqual([true, true, true]);
    for (const event of events) await watcher.next("event", (f) => f.event.id === event.id);
    expect(watcher.rawCount() - before).toBe(1);
    watcher.close();
  });
});

describe("Room: events to the media side", () => {
  let bridge: FakeBridge;
  beforeAll(() => {
    bridge = installFakeBridge(env.BRIDGE_URL!, env.BRIDGE_INGRESS_SECRET!);
  });
  const storedFor = (room: string) => bridge.stored.filter((e) => (e.data as { roomId?: string }).roomId === room);

  it("hands chat messages and presence joins/leaves to the room's outbox shard, off the hot path", async () => {
    const room = newRoom();
    const alice = await join(room, "alice", { name: "Alice" });
    alice.send({ type: "send", text: "for moderation" });
    await alice.next("message");
    alice.close();
    await alice.closed;
    // The room's outbox gathers events for ROOM_OUTBOX_FLUSH_MS, then delivers them to the (fake) bridge.
    const delivered = await waitFor("chat and presence events at the bridge", () => (storedFor(room).length >= 3 ? storedFor(room) : null));
    expect(delivered.map((e) => `${e.type}:${String((e.data as Record<string, unknown>).change ?? (e.data as Record<string, unknown>).text)}`)).toEqual([
      "presence.update:join",
      "chat.message:for moderation",
      "presence.update:leave",
    ]);
  });

  it("stores a chat message together with its chat.message event for the media side", async () => {
    const room = newRoom();
    const alice = await join(room, "alice");
    alice.send({ type: "send", text: "together" });
    const { message } = await alice.next("message");
    // Read inside the object: the message and its event are both there, whatever the delivery has done since.
    const [stored, event] = await runInDurableObject(env.Room.getByName(room), (instance: Room, state) => [
      state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM messages WHERE id = ?", message.id).one().n,
      [...instance.outbox.pending(1000), ...bridge.stored.map((e) => JSON.stringify(e))]
        .map((body) => JSON.parse(body) as { type: string; data: { roomId?: string; messageId?: number } })
        .find((e) => e.type === "chat.message" && e.data.roomId === room && e.data.messageId === message.id),
    ]);
    expect(stored).toBe(1);
    expect(event).toBeDefined();
    alice.close();
  });

  it("hands over events an earlier version of the room left in its own pending table (evicted before its flush)", async () => {
    const room = newRoom();
    const stub = env.Room.getByName(room);
    const left = makeEvent("chat.message", { roomId: room, messageId: 1, userId: "u1", text: "left behind", at: 1 }, { source: "edge", subject: `room/${room}` });
    // The table and row exactly as rooms used to keep them before their outbox, then the object is evicted.
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec("CREATE TABLE IF NOT EXISTS media_side_pending (seq INTEGER PRIMARY KEY AUTOINCREMENT, shard TEXT NOT NULL, body TEXT NOT NULL)");
      state.storage.sql.exec("INSERT INTO media_side_pending (shard, body) VALUES (?, ?)", room, JSON.stringify(left));
    });
    await evictDurableObject(stub);
    await runInDurableObject(stub, () => undefined); // any wake rebuilds the room
    expect((await bridge.waitForStored([left.id])).map((e) => e.id)).toEqual([left.id]);
    const legacyTables = await runInDurableObject(stub, (_instance, state) =>
      state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'media_side_pending'").one().n,
    );
    expect(legacyTables).toBe(0);
  });
});

describe("Room: moderation", () => {
  it("lets moderators delete (everyone told), kick and ban (persisted, refused at connect), and nobody else", async () => {
    const room = newRoom();
    const mod = await join(room, "mod", { role: "moderator" });
    const troll = await join(room, "troll");
    const bystander = await join(room, "bystander");
    troll.send({ type: "send", text: "spam" });
    const spam = (await bystander.next("message")).message;

    bystander.send({ type: "delete", messageId: spam.id });
    expect(await bystander.next("error")).toMatchObject({ code: "forbidden", ref: "delete" });

    mod.send({ type: "delete", messageId: spam.id });
    expect(await bystander.next("deleted")).toEqual({ type: "deleted", messageId: spam.id, by: "mod" });
    expect(await troll.next("deleted")).toMatchObject({ messageId: spam.id });
    mod.send({ type: "delete", messageId: 9999 });
    expect(await mod.next("error")).toMatchObject({ code: "message_not_found" });
    const late = await join(room, "late");
    expect(late.welcome.messages).toEqual([expect.objectContaining({ id: spam.id, text: "", deleted: true })]);

    mod.send({ type: "kick", userId: "troll", reason: "calm down" });
    expect(await troll.next("moderation")).toMatchObject({ action: "kick", userId: "troll", by: "mod", reason: "calm down" });
    expect((await troll.closed).code).toBe(ROOM_CLOSE.kicked);
    expect((await bystander.next("leave")).userId).toBe("troll");

    const back = await join(room, "troll");
    mod.send({ type: "ban", userId: "troll" });
    expect((await back.closed).code).toBe(ROOM_CLOSE.banned);
    expect(await bystander.next("moderation", (f) => f.action === "ban")).toMatchObject({ userId: "troll" });

    // The ban is persisted: it holds after the object is evicted from memory.
    await evictDurableObject(env.Room.getByName(room));
    const refused = await exports.default.fetch(`http://edge/parties/room/${room}`, {
      headers: { Upgrade: "websocket", authorization: `Bearer ${await tokenFor("troll")}` },
    });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ error: { code: "banned", message: "you are banned from this room" } });

    mod.send({ type: "unban", userId: "troll" });
    await bystander.next("moderation", (f) => f.action === "unban");
    const forgiven = await join(room, "troll");
    expect(forgiven.welcome.user.userId).toBe("troll");
    for (const c of [mod, bystander, late, forgiven]) c.close();
  });
});

describe("Room: WebRTC signaling", () => {
  it("relays a signal only to the addressed connection, and never into another room", async () => {
    const room = newRoom();
    const a = await join(room, "a");
    const b = await join(room, "b");
    const c = await join(room, "c");
    const elsewhere = await join(newRoom("other"), "d");

    a.send({ type: "signal", to: b.welcome.connectionId, kind: "offer", sdp: "v=0 offer" });
    const got = await b.next("signal");
    expect(got).toEqual({ type: "signal", from: a.welcome.connectionId, fromUserId: "a", kind: "offer", sdp: "v=0 offer" });
    b.send({ type: "signal", to: got.from, kind: "candidate", candidate: { candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host", sdpMid: "0", sdpMLineIndex: 0 } });
    expect((await a.next("signal")).candidate?.candidate).toContain("typ host");

    a.send({ type: "signal", to: elsewhere.welcome.connectionId, kind: "offer", sdp: "v=0" });
    expect(await a.next("error")).toMatchObject({ code: "peer_not_found", ref: "signal" });
    // Sockets also carry a user tag (`u:<userId>`): a signal addressed to a tag, not a connection id, goes nowhere.
    a.send({ type: "signal", to: "u:b", kind: "offer", sdp: "v=0" });
    expect(await a.next("error")).toMatchObject({ code: "peer_not_found", ref: "signal" });

    // Proof of delivery order: c gets a later room-wide frame, and by then has seen no signal.
    a.send({ type: "send", text: "after the signals" });
    await c.next("message");
    expect(c.received.some((f) => f.type === "signal")).toBe(false);
    expect(elsewhere.received.some((f) => f.type === "signal")).toBe(false);
    for (const x of [a, b, c, elsewhere]) x.close();
  });
});

describe("Room: limits", () => {
  it("answers malformed JSON, unknown types and invalid frames with an error frame and keeps the connection", async () => {
    const alice = await join(newRoom(), "alice");
    alice.send("{not json");
    expect(await alice.next("error")).toMatchObject({ code: "bad_json" });
    alice.send({ type: "teleport" });
    expect(await alice.next("error")).toMatchObject({ code: "unknown_type" });
    alice.send({ type: "send", text: "" });
    expect(await alice.next("error")).toMatchObject({ code: "invalid_frame", ref: "send" });
    alice.send({ type: "send", text: "x".repeat(4001) });
    expect(await alice.next("error")).toMatchObject({ code: "invalid_frame", ref: "send" });
    alice.send({ type: "ping", id: "p" });
    expect(await alice.next("pong")).toMatchObject({ id: "p" });
    alice.close();
  });

  it("closes with 1009 on a frame larger than the limit, and the room carries on", async () => {
    const room = newRoom();
    const alice = await join(room, "alice");
    const bob = await join(room, "bob");
    alice.send({ type: "send", text: "x".repeat(settings.roomMaxFrameBytes) });
    const closed = await alice.closed;
    expect(closed).toEqual({ code: 1009, reason: `frame larger than ${settings.roomMaxFrameBytes} bytes` });
    expect((await bob.next("leave")).userId).toBe("alice");
    bob.close();
  });

  it("rate-limits per connection: error frames with retryAfterMs, then close 1008 on continued abuse", async () => {
    const room = newRoom();
    const flooder = await join(room, "flooder");
    const calm = await join(room, "calm");
    const total = 4 * (settings.roomRateBurst + settings.roomRateStrikes);
    for (let i = 0; i < total; i++) flooder.send({ type: "ping" });
    const limited = await flooder.next("error");
    expect(limited.code).toBe("rate_limited");
    expect(limited.retryAfterMs).toBeGreaterThan(0);
    expect((await flooder.closed).code).toBe(1008);
    // Another connection of the same room is unaffected.
    calm.send({ type: "ping", id: "calm" });
    expect((await calm.next("pong")).id).toBe("calm");
    calm.close();
  });
});

describe("Room: system events", () => {
  const liveEvent = (room: string, id?: string) =>
    makeEvent(
      "stream.live",
      { streamId: "s1", roomId: room, nodeId: "node-a", playbackUrl: "https://cdn.example/live/s1/master.m3u8", renditions: [] },
      { source: "media-node/node-a", subject: "stream/s1", ...(id && { id }) },
    );
  const post = (room: string, body: unknown, token: string | null = env.INTERNAL_API_TOKEN ?? null) =>
    exports.default.fetch(`http://edge/internal/rooms/${room}/events`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token && { authorization: `Bearer ${token}` }) },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });

  it("applies a pushed event once, broadcasts it, and shows the stream state to late joiners", async () => {
    const room = newRoom();
    const watcher = await join(room, "watcher", { role: "viewer" });
    const event = liveEvent(room);
    const first = await post(room, event);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ applied: true });
    expect((await watcher.next("event")).event).toMatchObject({ id: event.id, type: "stream.live" });

    const again = await post(room, event);
    expect(await again.json()).toEqual({ applied: false });
    // A later frame proves the repeat was not broadcast.
    watcher.send({ type: "react", emoji: "👀" });
    await watcher.next("reactions");
    expect(watcher.received.filter((f) => f.type === "event")).toHaveLength(1);

    const late = await join(room, "late");
    expect(late.welcome.room.stream).toMatchObject({ streamId: "s1", status: "live", playbackUrl: "https://cdn.example/live/s1/master.m3u8" });

    // RPC for the event ingress: the same ledger.
    expect(await env.Room.getByName(room).applyEvent(event)).toEqual({ applied: false });
    watcher.close();
    late.close();
  });

  it("refuses bad internal pushes with clear errors and applies nothing", async () => {
    const room = newRoom();
    const cases: [Response, number, string][] = [
      [await post(room, liveEvent(room), null), 401, "invalid_internal_token"],
      [await post(room, liveEvent(room), "wrong-token"), 401, "invalid_internal_token"],
      [await post(room, "{nope"), 400, "invalid_event"],
      [await post(room, { ...liveEvent(room), data: { streamId: "s1" } }), 400, "invalid_event"],
      [await post(room, makeEvent("notification.requested", { notificationId: "n1", userId: "u1", title: "hi" }, { source: "t", subject: "user/u1" })), 400, "unsupported_event"],
      [await post(room, liveEvent("another-room")), 400, "room_mismatch"],
      [await post("..%2Fescape", liveEvent(room)), 400, "invalid_room_id"],
    ];
    for (const [res, status, code] of cases) {
      expect(res.status).toBe(status);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
    }
    const viewer = await join(room, "v");
    expect(viewer.welcome.room).toEqual({ roomId: room });
    viewer.close();
  });
});

describe("Room: hibernation and eviction", () => {
  it("keeps state, presence and history intact when the object is evicted", async () => {
    const room = newRoom();
    const alice = await join(room, "alice", { name: "Alice" });
    const bob1 = await join(room, "bob");
    const bob2 = await join(room, "bob");
    bob1.send({ type: "presence", state: { status: "presenting" } });
    await alice.next("update", (f) => f.user.state.status === "presenting");
    alice.send({ type: "send", text: "before eviction" });
    await bob1.next("message");
    const pushed = await env.Room.getByName(room).applyEvent(
      makeEvent("stream.started", { streamId: "s9", roomId: room, nodeId: "n", app: "live" }, { source: "t", subject: "stream/s9" }),
    );
    expect(pushed.applied).toBe(true);
    await alice.next("event");

    await evictDurableObject(env.Room.getByName(room));

    // A newcomer after the eviction sees the same presence (from the hibernated sockets), history and info.
    const carol = await join(room, "carol");
    const byUser = Object.fromEntries(carol.welcome.presence.map((p) => [p.userId, p]));
    expect(byUser.alice).toMatchObject({ connections: 1, name: "Alice" });
    expect(byUser.bob).toMatchObject({ connections: 2, state: { status: "presenting" } });
    expect(carol.welcome.messages.map((m) => m.text)).toEqual(["before eviction"]);
    expect(carol.welcome.room.stream).toMatchObject({ streamId: "s9", status: "starting" });

    // The hibernated sockets still work in both directions, and ids keep counting.
    bob2.send({ type: "send", text: "after eviction" });
    expect((await alice.next("message", (f) => f.message.text === "after eviction")).message.id).toBe(2);
    bob1.close();
    expect((await carol.next("update", (f) => f.user.userId === "bob")).user.connections).toBe(1);
    for (const c of [alice, bob2, carol]) c.close();
  });
});
