// Big rooms in workerd: the small room's client contract (welcome, batches, history, resume, moderation, limits)
// against a room served by 4 shards under 2 relays and a coordinator (the test env: ROOM_SHARDED=big-*,
// ROOM_SHARDS=4, ROOM_RELAY_FANOUT=2), plus what only a big room has to get right: one order for messages sent on
// different shards, resume on another shard, a shard rebuilt after eviction.
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { makeEvent } from "../../../shared/envelope.ts";
import { ROOM_CLOSE } from "../../../shared/protocol/room.ts";
import { type FakeBridge, installFakeBridge } from "../../test/fake-bridge.ts";
import { env, type FrameOf, join, type JoinOptions, newRoom, type RoomClient, tokenFor, wrapSocket } from "../../test/clients.ts";
import { encodeVerifiedUser, VERIFIED_CLAIMS_HEADER } from "../auth/claims.ts";
import type { RoomStore } from "../rooms/room-store.ts";
import { edgeSettings } from "../settings.ts";
import type { RoomCoordinator } from "./coordinator.ts";
import type { RoomShard } from "./shard.ts";
import type { Uplink } from "./uplink.ts";
import { connectionIdFor, homeShard, relayName, shardName } from "./placement.ts";
import type { RoomRelay } from "./relay.ts";
import { placeOnShard } from "./route.ts";
import { waitFor } from "../../../test/helpers/wait.ts";

const settings = edgeSettings(env);
const SHARDS = settings.roomShards;

/** A user id (from `label`) whose home shard is `shard`. */
function userOn(shard: number, label: string): string {
  for (let k = 0; ; k++) {
    const id = `${label}${k}`;
    if (homeShard(id, SHARDS) === shard) return id;
  }
}

const bigRoom = () => newRoom("big");

// Chat events go to the media side through the coordinator's outbox: a fake bridge takes them.
let bridge: FakeBridge;
beforeAll(() => {
  bridge = installFakeBridge(env.BRIDGE_URL!, env.BRIDGE_INGRESS_SECRET!);
});
type Client = RoomClient & { welcome: FrameOf<"welcome"> };

/** Connects to one shard directly, as the front Worker does after its checks (used to move a user to another shard). */
async function joinShard(room: string, shard: number, userId: string, opts: { since?: number; role?: JoinOptions["role"] } = {}): Promise<Client> {
  const user = { userId, role: opts.role ?? ("member" as const), exp: Math.floor(Date.now() / 1000) + 3600 };
  const q = new URLSearchParams({ _pk: connectionIdFor(shard, crypto.randomUUID()) });
  if (opts.since !== undefined) q.set("since", String(opts.since));
  const res = await env.RoomShard.getByName(shardName(room, shard)).fetch(`http://edge/parties/room/${room}?${q}`, {
    headers: { Upgrade: "websocket", [VERIFIED_CLAIMS_HEADER]: encodeVerifiedUser(user) },
  });
  if (res.status !== 101 || !res.webSocket) throw new Error(`shard refused: ${res.status} ${await res.text()}`);
  const client = wrapSocket(res.webSocket);
  return Object.assign(client, { welcome: await client.next("welcome") });
}

/**
 * Evicts a shard from memory. An object with an open outgoing socket is not evicted (here or in production, short
 * of a restart, which closes client sockets too), so the shard first lets its link go, as it does when idle.
 */
async function evictShard(room: string, shard: number): Promise<void> {
  const stub = env.RoomShard.getByName(shardName(room, shard));
  await runInDurableObject(stub, (instance: RoomShard) => (instance as unknown as { unlink(): void }).unlink());
  await evictDurableObject(stub);
}

const texts = (c: RoomClient) => c.received.filter((f): f is FrameOf<"message"> => f.type === "message").map((f) => f.message.text);
const ids = (c: RoomClient) => c.received.filter((f): f is FrameOf<"message"> => f.type === "message").map((f) => f.message.id);

describe("big room: joining", () => {
  it("welcomes with mode big, a summary instead of a user list, and a connection id that names the shard", async () => {
    const room = bigRoom();
    const alice = await join(room, "alice", { name: "Alice" });
    expect(alice.welcome.mode).toBe("big");
    expect(alice.welcome.connectionId).toMatch(new RegExp(`^${homeShard("alice", SHARDS)}\\.[0-9a-f-]{36}$`));
    expect(alice.welcome.user).toEqual({ userId: "alice", role: "member", name: "Alice" });
    expect(alice.welcome.messages).toEqual([]);
    expect(alice.welcome.room).toEqual({ roomId: room });
    expect(alice.welcome.summary).toMatchObject({ lastMessageId: 0, recentChatters: [] });
    alice.close();
  });

  it("counts users across shards in summaries (a user's tabs once), names moderators, and sends no per-join frames", async () => {
    const room = bigRoom();
    const watcher = await join(room, userOn(0, "w"), { role: "viewer" });
    const mod = await join(room, userOn(1, "mod"), { role: "moderator", name: "Mo" });
    const tab1 = await join(room, userOn(2, "tabs"));
    const tab2 = await join(room, tab1.welcome.user.userId);
    const other = await join(room, userOn(3, "o"), { role: "viewer" });
    const summary = await watcher.next("summary", (f) => f.users === 4);
    expect(summary).toMatchObject({ users: 4, connections: 5, byRole: { viewer: 2, member: 1, moderator: 1, broadcaster: 0 } });
    expect(summary.featured).toEqual([expect.objectContaining({ userId: mod.welcome.user.userId, role: "moderator", name: "Mo", connections: 1 })]);
    expect(watcher.received.some((f) => f.type === "join" || f.type === "leave" || f.type === "update")).toBe(false);

    tab1.close();
    expect((await watcher.next("summary", (f) => f.connections === 4)).users).toBe(4);
    tab2.close();
    await watcher.next("summary", (f) => f.users === 3);
    for (const c of [watcher, mod, other]) c.close();
  });
});

describe("big room: chat", () => {
  it("gives messages sent on different shards one order, to everyone, once", async () => {
    const room = bigRoom();
    const clients = await Promise.all([0, 1, 2, 3].map((s) => join(room, userOn(s, "chat"))));
    const viewer = await join(room, userOn(1, "view"), { role: "viewer" });
    const per = 5;
    for (let i = 0; i < per; i++) for (const [s, c] of clients.entries()) c.send({ type: "send", text: `s${s}-${i}`, clientId: `c${s}-${i}` });
    const total = per * clients.length;
    const everyone = [...clients, viewer];
    for (const c of everyone) await c.next("message", (f) => f.message.id === total);
    const order = texts(viewer);
    expect(order).toHaveLength(total);
    expect(ids(viewer)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    for (const c of everyone) expect(texts(c)).toEqual(order);
    // Each sender's own messages keep the order it sent them in, and come back with its clientId.
    for (const s of [0, 1, 2, 3]) expect(order.filter((t) => t.startsWith(`s${s}-`))).toEqual(Array.from({ length: per }, (_, i) => `s${s}-${i}`));
    const echo = clients[2]!.received.find((f) => f.type === "message" && f.message.text === "s2-3") as FrameOf<"message">;
    expect(echo.clientId).toBe("c2-3");

    viewer.send({ type: "send", text: "can I?" });
    expect(await viewer.next("error")).toMatchObject({ code: "forbidden", ref: "send" });
    viewer.send({ type: "comment", text: "me neither?" });
    expect(await viewer.next("error")).toMatchObject({ code: "forbidden", ref: "comment" });

    await clients[3]!.next("summary", (f) => f.lastMessageId === total && f.recentChatters.length === 4);
    const late = await join(room, userOn(3, "late"));
    expect(late.welcome.messages.map((m) => m.text)).toEqual(order);
    expect(late.welcome.summary?.lastMessageId).toBe(total);
    expect(late.welcome.summary?.recentChatters.map((c) => c.userId).sort()).toEqual(clients.map((c) => c.welcome.user.userId).sort());
    for (const c of [...everyone, late]) c.close();
  });

  it("sums reactions from every shard and relays live comments", async () => {
    const room = bigRoom();
    const a = await join(room, userOn(0, "ra"), { name: "A" });
    const b = await join(room, userOn(3, "rb"), { role: "viewer" });
    for (let i = 0; i < 10; i++) b.send({ type: "react", emoji: "🔥" });
    for (let i = 0; i < 5; i++) a.send({ type: "react", emoji: "🔥" });
    a.send({ type: "react", emoji: "👏" });
    a.send({ type: "comment", text: "what a goal" });
    expect(await b.next("comment")).toMatchObject({ userId: a.welcome.user.userId, name: "A", text: "what a goal" });
    const counts: Record<string, number> = {};
    while ((counts["🔥"] ?? 0) < 15 || !counts["👏"]) {
      const frame = await a.next("reactions");
      for (const [emoji, n] of Object.entries(frame.counts)) counts[emoji] = (counts[emoji] ?? 0) + n;
    }
    expect(counts).toEqual({ "🔥": 15, "👏": 1 });
    a.close();
    b.close();
  });

  it("serves paged history over HTTP from the coordinator", async () => {
    const room = bigRoom();
    const a = await join(room, "hist");
    for (let i = 1; i <= 3; i++) a.send({ type: "send", text: `h${i}` });
    await a.next("message", (f) => f.message.id === 3);
    const token = await tokenFor("reader");
    const res = await exports.default.fetch(`http://edge/parties/room/${room}/history?limit=2`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ messages: [expect.objectContaining({ id: 2, text: "h2" }), expect.objectContaining({ id: 3, text: "h3" })], nextBefore: 2 });
    const anonymous = await exports.default.fetch(`http://edge/parties/room/${room}/history`);
    expect(anonymous.status).toBe(401);
    a.close();
  });
});

describe("big room: events to the media side", () => {
  it("forwards each chat message once, from the coordinator's outbox", async () => {
    const room = bigRoom();
    const a = await join(room, userOn(0, "ev"));
    const b = await join(room, userOn(2, "ev"));
    a.send({ type: "send", text: "one" });
    b.send({ type: "send", text: "two" });
    await a.next("message", (f) => f.message.id === 2);
    await waitFor("both chat events at the bridge", () => bridge.stored.filter((e) => e.type === "chat.message" && (e.data as { roomId: string }).roomId === room).length === 2);
    const events = bridge.stored.filter((e) => e.type === "chat.message" && (e.data as { roomId: string }).roomId === room);
    expect(events.map((e) => (e.data as { messageId: number; text: string }).messageId).sort()).toEqual([1, 2]);
    // The operator view of the room's outbox is the coordinator's.
    const view = await exports.default.fetch(`http://edge/internal/bus/outbox/${room}`, { headers: { authorization: `Bearer ${env.INTERNAL_API_TOKEN}` } });
    expect(view.status).toBe(200);
    expect(await view.json()).toMatchObject({ shard: room, pendingEvents: [], deadLetterEvents: [] });
    a.close();
    b.close();
  });

  it("applies pushed stream events once at the coordinator, broadcasts them and shows them to late joiners on any shard", async () => {
    const room = bigRoom();
    const watcher = await join(room, userOn(1, "sw"), { role: "viewer" });
    const event = makeEvent(
      "stream.live",
      { streamId: "s1", roomId: room, nodeId: "node-a", playbackUrl: "https://cdn.example/live/s1/master.m3u8", renditions: [] },
      { source: "media-node/node-a", subject: "stream/s1" },
    );
    const post = () =>
      exports.default.fetch(`http://edge/internal/rooms/${room}/events`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${env.INTERNAL_API_TOKEN}` },
        body: JSON.stringify(event),
      });
    expect(await (await post()).json()).toEqual({ applied: true });
    expect((await watcher.next("event")).event).toMatchObject({ id: event.id, type: "stream.live" });
    expect(await (await post()).json()).toEqual({ applied: false });
    // A shard that was already running learned it from the broadcast; one that starts later from its snapshot.
    for (const shard of [1, 3]) {
      const late = await join(room, userOn(shard, "sl"));
      expect(late.welcome.room.stream).toMatchObject({ streamId: "s1", status: "live" });
      late.close();
    }
    watcher.close();
  });
});

describe("big room: resume", () => {
  it("resumes a client that moved to another shard mid-chat with no gap and no repeat", async () => {
    const room = bigRoom();
    const sender = await join(room, userOn(0, "snd"));
    const mover = userOn(1, "mover");
    const first = await join(room, mover);
    for (let i = 1; i <= 5; i++) sender.send({ type: "send", text: `m${i}` });
    const lastSeen = (await first.next("message", (f) => f.message.text === "m5")).message.id;
    first.close();
    await first.closed;
    for (let i = 6; i <= 9; i++) sender.send({ type: "send", text: `m${i}` });
    await sender.next("message", (f) => f.message.text === "m9");
    // The same user comes back on shard 3 (as when the home shard is full), while chat goes on.
    const moved = await joinShard(room, 3, mover, { since: lastSeen });
    sender.send({ type: "send", text: "m10" });
    await moved.next("message", (f) => f.message.text === "m10");
    expect(moved.welcome.resume).toEqual({ since: lastSeen, complete: true });
    const seen = [...moved.welcome.messages.map((m) => m.text), ...texts(moved)];
    expect(seen).toEqual(["m6", "m7", "m8", "m9", "m10"]);
    sender.close();
    moved.close();
  });

  it("asks the coordinator only for a gap older than the shard's ring, and says when a gap is past the replay bound", async () => {
    const room = bigRoom();
    const coordinator = env.RoomCoordinator.getByName(room);
    const total = Math.max(settings.roomShardRing, settings.roomResumeMax) + 20;
    await runInDurableObject(coordinator, (instance: RoomCoordinator) => {
      const store = (instance as unknown as { store: RoomStore }).store;
      for (let i = 1; i <= total; i++) store.append("alice", undefined, `m${i}`, Date.now(), settings.roomHistoryMax);
      (instance as unknown as { lastId: number }).lastId = total;
    });
    const since = total - settings.roomShardRing - 50;
    const before = await coordinator.stats();
    const bob = await join(room, "bob", { since });
    expect(bob.welcome.resume).toEqual({ since, complete: true });
    expect(bob.welcome.messages.map((m) => m.id)).toEqual(Array.from({ length: total - since }, (_, i) => since + 1 + i));
    // One question for the gap (and one snapshot as the shard started), not one per message.
    expect((await coordinator.stats()).events - before.events).toBeLessThanOrEqual(3);

    const carol = await join(room, "carol", { since: 3 });
    expect(carol.welcome.resume).toEqual({ since: 3, complete: false });
    expect(carol.welcome.messages).toHaveLength(settings.roomWelcomeMessages);
    expect(carol.welcome.messages.at(-1)?.id).toBe(total);
    bob.close();
    carol.close();
  });
});

describe("big room: moderation", () => {
  it("deletes for everyone, kicks and bans on the shard that holds the user, refuses banned users on every shard", async () => {
    const room = bigRoom();
    const modId = userOn(0, "mod");
    const trollId = userOn(2, "troll");
    const mod = await join(room, modId, { role: "moderator" });
    const troll = await join(room, trollId);
    const bystander = await join(room, userOn(3, "by"));
    troll.send({ type: "send", text: "spam" });
    const spam = (await bystander.next("message")).message;

    bystander.send({ type: "delete", messageId: spam.id });
    expect(await bystander.next("error")).toMatchObject({ code: "forbidden", ref: "delete" });
    mod.send({ type: "delete", messageId: spam.id });
    expect(await bystander.next("deleted")).toEqual({ type: "deleted", messageId: spam.id, by: modId });
    expect(await troll.next("deleted")).toMatchObject({ messageId: spam.id });
    mod.send({ type: "delete", messageId: 9999 });
    expect(await mod.next("error")).toMatchObject({ code: "message_not_found", ref: "delete" });
    const late = await join(room, userOn(1, "late"));
    expect(late.welcome.messages).toEqual([expect.objectContaining({ id: spam.id, text: "", deleted: true })]);

    mod.send({ type: "kick", userId: trollId, reason: "calm down" });
    expect(await troll.next("moderation")).toMatchObject({ action: "kick", userId: trollId, by: modId, reason: "calm down" });
    expect((await troll.closed).code).toBe(ROOM_CLOSE.kicked);
    expect(await bystander.next("moderation")).toMatchObject({ action: "kick", userId: trollId });

    const back = await join(room, trollId);
    mod.send({ type: "ban", userId: trollId });
    expect((await back.closed).code).toBe(ROOM_CLOSE.banned);
    // Refused at connect by every shard, without asking the coordinator, and still after the home shard is evicted.
    await evictShard(room, 2);
    const refused = await exports.default.fetch(`http://edge/parties/room/${room}`, { headers: { Upgrade: "websocket", authorization: `Bearer ${await tokenFor(trollId)}` } });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ error: { code: "banned", message: "you are banned from this room" } });
    await expect(joinShard(room, 1, trollId)).rejects.toThrow(/403/);

    mod.send({ type: "unban", userId: trollId });
    await bystander.next("moderation", (f) => f.action === "unban");
    await waitFor("the unbanned user admitted", async () => (await joinShard(room, 2, trollId).then((c) => (c.close(), true), () => false)));
    for (const c of [mod, bystander, late]) c.close();
  });
});

describe("big room: signaling", () => {
  it("relays a signal to one connection id, on its own shard or another, and never elsewhere", async () => {
    const room = bigRoom();
    const a = await join(room, userOn(0, "sa"));
    const b = await join(room, userOn(3, "sb"));
    const c = await join(room, userOn(0, "sc"));
    const elsewhere = await join(bigRoom(), userOn(3, "sd"));
    a.send({ type: "signal", to: b.welcome.connectionId, kind: "offer", sdp: "v=0 offer" });
    const got = await b.next("signal");
    expect(got).toEqual({ type: "signal", from: a.welcome.connectionId, fromUserId: a.welcome.user.userId, kind: "offer", sdp: "v=0 offer" });
    b.send({ type: "signal", to: got.from, kind: "answer", sdp: "v=0 answer" });
    expect((await a.next("signal")).sdp).toBe("v=0 answer");
    a.send({ type: "signal", to: c.welcome.connectionId, kind: "bye" });
    expect((await c.next("signal")).from).toBe(a.welcome.connectionId);

    for (const [i, to] of [elsewhere.welcome.connectionId, `u:${b.welcome.user.userId}`, "7.00000000-0000-0000-0000-000000000000"].entries()) {
      a.send({ type: "signal", id: `s${i}`, to, kind: "offer", sdp: "v=0" });
      expect(await a.next("error")).toMatchObject({ code: "peer_not_found", ref: "signal", id: `s${i}` });
    }
    a.send({ type: "signal", id: "me", to: a.welcome.connectionId, kind: "offer", sdp: "v=0" });
    expect(await a.next("error")).toMatchObject({ code: "self_signal", ref: "signal", id: "me" });
    // No call roster in a big room: a call frame is refused by name.
    a.send({ type: "call.join", id: "j1", media: { audio: true, video: true, screen: false } });
    expect(await a.next("error")).toMatchObject({ code: "call_unavailable", ref: "call.join", id: "j1" });
    expect(elsewhere.received.some((f) => f.type === "signal")).toBe(false);
    for (const x of [a, b, c, elsewhere]) x.close();
  });
});

describe("big room: limits", () => {
  it("answers bad frames like a small room, closes on oversize (1009) and on continued flooding (1008)", async () => {
    const room = bigRoom();
    const alice = await join(room, "alice");
    alice.send("{not json");
    expect(await alice.next("error")).toMatchObject({ code: "bad_json" });
    alice.send({ type: "teleport" });
    expect(await alice.next("error")).toMatchObject({ code: "unknown_type" });
    alice.send({ type: "send", text: "" });
    expect(await alice.next("error")).toMatchObject({ code: "invalid_frame", ref: "send" });
    alice.send({ type: "presence", state: { blob: "x".repeat(settings.roomStateMaxBytes + 1) } });
    expect(await alice.next("error")).toMatchObject({ code: "state_too_large", ref: "presence" });
    alice.send({ type: "ping", id: "p" });
    expect(await alice.next("pong")).toMatchObject({ id: "p" });

    const big = await join(room, "big-sender");
    big.send({ type: "send", text: "x".repeat(settings.roomMaxFrameBytes) });
    expect(await big.closed).toEqual({ code: 1009, reason: `frame larger than ${settings.roomMaxFrameBytes} bytes` });

    const flooder = await join(room, "flooder");
    const total = 4 * (settings.roomRateBurst + settings.roomRateStrikes);
    for (let i = 0; i < total; i++) flooder.send({ type: "ping" });
    const limited = await flooder.next("error");
    expect(limited.code).toBe("rate_limited");
    expect(limited.retryAfterMs).toBeGreaterThan(0);
    expect((await flooder.closed).code).toBe(1008);
    alice.send({ type: "ping", id: "still" });
    expect((await alice.next("pong")).id).toBe("still");
    alice.close();
  });

  it("refuses requests that skipped the front Worker, and answers 503 room_unavailable when a shard cannot start", async () => {
    const direct = await env.RoomShard.getByName(shardName(bigRoom(), 0)).fetch("http://edge/parties/room/x", { headers: { Upgrade: "websocket" } });
    expect(direct.status).toBe(401);
    const user = encodeVerifiedUser({ userId: "u1", role: "member", exp: Math.floor(Date.now() / 1000) + 60 });
    const broken = await env.RoomShard.getByName("not-a-shard-name").fetch("http://edge/parties/room/x", { headers: { Upgrade: "websocket", [VERIFIED_CLAIMS_HEADER]: user } });
    expect(broken.status).toBe(503);
    expect(((await broken.json()) as { error: { code: string } }).error.code).toBe("room_unavailable");
  });

  it("sends a client on when its home shard is full, and refuses with room_full when every shard is", async () => {
    const tried: number[] = [];
    const full = () => Response.json({ error: { code: "shard_full", message: "full" } }, { status: 503 });
    const req = new Request("http://edge/parties/room/big-x?_pk=11111111-1111-1111-1111-111111111111", { headers: { Upgrade: "websocket" } });
    const home = homeShard("alice", 4);
    const res = await placeOnShard(req, "alice", 4, async (index, r) => {
      tried.push(index);
      if (tried.length < 3) return full();
      return new Response(new URL(r.url).searchParams.get("_pk"));
    });
    expect(tried).toEqual([home, (home + 1) % 4, (home + 2) % 4]);
    expect(await res.text()).toBe(`${(home + 2) % 4}.11111111-1111-1111-1111-111111111111`);
    // Other refusals (a ban) are answered as they are, without trying further shards.
    tried.length = 0;
    const banned = await placeOnShard(req, "alice", 4, async (index) => (tried.push(index), Response.json({ error: { code: "banned" } }, { status: 403 })));
    expect([banned.status, tried.length]).toEqual([403, 1]);
    const none = await placeOnShard(req, "alice", 4, async () => full());
    expect(none.status).toBe(503);
    expect(await none.json()).toMatchObject({ error: { code: "room_full" } });
  });
});

describe("big room: a shard's instance lost", () => {
  it("catches clients up when a shard's link drops: the parent wakes it, it links again and fills the gap in order", async () => {
    const room = bigRoom();
    const sender = await join(room, userOn(0, "ls"));
    const kept = await join(room, userOn(2, "lk"), { role: "viewer" });
    sender.send({ type: "send", text: "before" });
    await kept.next("message", (f) => f.message.text === "before");
    // The link goes down the way it does when an instance dies (not a clean close) and is not dialled again by it.
    await runInDurableObject(env.RoomShard.getByName(shardName(room, 2)), (instance: RoomShard) => {
      (instance as unknown as { uplink: Uplink }).uplink.stop(4000, "instance lost");
    });
    for (let i = 1; i <= 6; i++) sender.send({ type: "send", text: `during${i}` });
    await kept.next("message", (f) => f.message.text === "during6");
    sender.send({ type: "send", text: "after" });
    await kept.next("message", (f) => f.message.text === "after");
    expect(texts(kept)).toEqual(["before", "during1", "during2", "during3", "during4", "during5", "during6", "after"]);
    expect(ids(kept)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    sender.close();
    kept.close();
  });

  it("catches shards up when a relay's link drops: the coordinator wakes it, and its shards fill the gap", async () => {
    const room = bigRoom();
    const sender = await join(room, userOn(0, "rs"));
    // Shards 2 and 3 hang off relay 1 (4 shards, fanout 2).
    const kept = await join(room, userOn(3, "rk"), { role: "viewer" });
    sender.send({ type: "send", text: "before" });
    await kept.next("message", (f) => f.message.text === "before");
    await runInDurableObject(env.RoomRelay.getByName(relayName(room, 1)), (instance: RoomRelay) => {
      (instance as unknown as { uplink: Uplink }).uplink.stop(4000, "instance lost");
    });
    for (let i = 1; i <= 4; i++) sender.send({ type: "send", text: `during${i}` });
    sender.send({ type: "send", text: "after" });
    await kept.next("message", (f) => f.message.text === "after");
    expect(texts(kept)).toEqual(["before", "during1", "during2", "during3", "during4", "after"]);
    expect(ids(kept)).toEqual([1, 2, 3, 4, 5, 6]);
    sender.close();
    kept.close();
  });

  it("loses nothing when a shard is evicted and rebuilt while its clients stay connected", async () => {
    const room = bigRoom();
    const sender = await join(room, userOn(0, "es"));
    const kept = await join(room, userOn(2, "ek"), { role: "viewer" });
    sender.send({ type: "send", text: "before" });
    await kept.next("message", (f) => f.message.text === "before");
    await evictShard(room, 2);
    for (let i = 1; i <= 6; i++) sender.send({ type: "send", text: `during${i}` });
    await sender.next("message", (f) => f.message.text === "during6");
    // The kept client's next frame wakes the shard (its socket outlived the instance): it is caught up first.
    kept.send({ type: "ping", id: "alive" });
    expect((await kept.next("pong")).id).toBe("alive");
    sender.send({ type: "send", text: "after" });
    await kept.next("message", (f) => f.message.text === "after");
    expect(texts(kept)).toEqual(["before", "during1", "during2", "during3", "during4", "during5", "during6", "after"]);
    expect(ids(kept)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // The rebuilt shard still counts its clients.
    expect((await sender.next("summary", (f) => f.users === 2)).connections).toBe(2);
    sender.close();
    kept.close();
  });

  it("lets clients of a crashed shard reconnect with ?since= and miss nothing", async () => {
    const room = bigRoom();
    const sender = await join(room, userOn(0, "cs"));
    const userId = userOn(2, "ck");
    const client = await join(room, userId, { role: "viewer" });
    sender.send({ type: "send", text: "before" });
    const lastSeen = (await client.next("message", (f) => f.message.text === "before")).message.id;
    await runInDurableObject(env.RoomShard.getByName(shardName(room, 2)), (_i, state) => state.abort("test: crash")).catch(() => undefined);
    await client.closed;
    for (let i = 1; i <= 3; i++) sender.send({ type: "send", text: `during${i}` });
    await sender.next("message", (f) => f.message.text === "during3");
    const again = await join(room, userId, { role: "viewer", since: lastSeen });
    expect(again.welcome.resume).toEqual({ since: lastSeen, complete: true });
    expect(again.welcome.messages.map((m) => m.text)).toEqual(["during1", "during2", "during3"]);
    sender.close();
    again.close();
  });

  it("carries on when the coordinator's instance is lost: links are dialled again, ids continue from storage", async () => {
    const room = bigRoom();
    const a = await join(room, userOn(1, "ca"));
    const b = await join(room, userOn(2, "cb"));
    a.send({ type: "send", text: "one" });
    await b.next("message", (f) => f.message.text === "one");
    // Linked shards hold references to it, so it is not evicted while in use; a crash is what can happen.
    await runInDurableObject(env.RoomCoordinator.getByName(room), (_i, state) => state.abort("test: crash")).catch(() => undefined);
    b.send({ type: "send", text: "two" });
    expect((await a.next("message", (f) => f.message.text === "two")).message.id).toBe(2);
    expect(ids(b)).toEqual([1, 2]);
    a.close();
    b.close();
  });
});

describe("big room: load stats (internal)", () => {
  const get = (path: string, token: string | null = env.INTERNAL_API_TOKEN ?? null, method = "GET") =>
    exports.default.fetch(`http://edge${path}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });

  it("lists every part with its sockets and counted events, and resets the counters", async () => {
    const room = bigRoom();
    const a = await join(room, userOn(1, "st"));
    a.send({ type: "ping", id: "x" });
    await a.next("pong");
    const res = await get(`/internal/bigrooms/${room}/stats`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { objects: { name: string; kind: string; sockets: number; events: number }[] };
    expect(body.objects.map((o) => o.kind)).toEqual(["coordinator", "relay", "relay", "shard", "shard", "shard", "shard"]);
    const shard = body.objects.find((o) => o.name === shardName(room, 1))!;
    expect(shard.sockets).toBe(1);
    expect(shard.events).toBeGreaterThanOrEqual(2);
    expect((await get(`/internal/bigrooms/${room}/stats/reset`, undefined, "POST")).status).toBe(200);
    a.close();
  });

  it("refuses without the token, for bad room ids and for rooms that are not big", async () => {
    expect((await get(`/internal/bigrooms/${bigRoom()}/stats`, null)).status).toBe(401);
    const bad = await get("/internal/bigrooms/..%2Fx/stats");
    expect([bad.status, ((await bad.json()) as { error: { code: string } }).error.code]).toEqual([400, "invalid_room_id"]);
    const small = await get(`/internal/bigrooms/${newRoom()}/stats`);
    expect([small.status, ((await small.json()) as { error: { code: string } }).error.code]).toEqual([404, "not_a_big_room"]);
  });
});
