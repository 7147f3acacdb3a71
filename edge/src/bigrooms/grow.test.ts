// A small room that grows big by itself (ROOM_SHARD_AT; 12 in the test env): below the threshold it is exactly
// a small room; at it, its history, bans, room info and applied events move to a coordinator, its clients are
// closed with 4010 and resume on shards through the same URL with no gap and no repeat, and whatever was sent
// during the move is kept.
import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { makeEvent } from "../../../shared/envelope.ts";
import { ROOM_CLOSE } from "../../../shared/protocol/room.ts";
import { waitFor } from "../../../test/helpers/wait.ts";
import { type FakeBridge, installFakeBridge } from "../../test/fake-bridge.ts";
import { env, type FrameOf, join, newRoom, type RoomClient, tokenFor, upgrade } from "../../test/clients.ts";
import { edgeSettings } from "../settings.ts";
import { homeShard } from "./placement.ts";

const settings = edgeSettings(env);
const AT = settings.roomShardAt;

let bridge: FakeBridge;
beforeAll(() => {
  bridge = installFakeBridge(env.BRIDGE_URL!, env.BRIDGE_INGRESS_SECRET!);
});

const ids = (c: RoomClient) => c.received.filter((f): f is FrameOf<"message"> => f.type === "message").map((f) => f.message.id);

const post = (room: string, event: ReturnType<typeof makeEvent>) =>
  exports.default.fetch(`http://edge/internal/rooms/${room}/events`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${env.INTERNAL_API_TOKEN}` },
    body: JSON.stringify(event),
  });

describe("a room that grows past ROOM_SHARD_AT", () => {
  it("stays a small room below it, then moves everyone to shards: same URL, resume with no gap, history, bans and events kept", { timeout: 30_000 }, async () => {
    expect(AT).toBeGreaterThan(3);
    const room = newRoom("grow");
    const mod = await join(room, "mod", { role: "moderator" });
    const sender = await join(room, "sender", { name: "Sender" });
    const troll = await join(room, "troll");
    mod.send({ type: "ban", userId: "troll", reason: "spam" });
    expect((await troll.closed).code).toBe(ROOM_CLOSE.banned);
    const viewers: Awaited<ReturnType<typeof join>>[] = [];
    for (let i = 0; viewers.length < AT - 3; i++) viewers.push(await join(room, `v${i}`, { role: "viewer" }));
    // One connection short of the threshold: a small room, list presence and all.
    expect([mod, sender, troll, ...viewers].every((c) => c.welcome.mode === undefined)).toBe(true);
    expect(viewers.at(-1)!.welcome.presence.map((p) => p.userId).sort()).toEqual(["mod", "sender", ...viewers.map((v) => v.welcome.user.userId)].sort());

    for (let i = 1; i <= 5; i++) sender.send({ type: "send", text: `m${i}`, clientId: `c${i}` });
    const lastSeen = (await viewers[0]!.next("message", (f) => f.message.text === "m5")).message.id;
    const live = makeEvent(
      "stream.live",
      { streamId: "s1", roomId: room, nodeId: "node-a", playbackUrl: "https://cdn.example/live/s1/master.m3u8", renditions: [] },
      { source: "media-node/node-a", subject: "stream/s1" },
    );
    expect(await (await post(room, live)).json()).toEqual({ applied: true });
    await viewers[0]!.next("event");

    // The connection that reaches the threshold starts the move; a message sent right away is held, not lost.
    const last = await join(room, "last", { role: "viewer" });
    sender.send({ type: "send", text: "during the move", clientId: "c6" });
    const everyone = [mod, sender, ...viewers, last];
    for (const c of everyone) {
      // Told in a frame, then closed with 4010 (a close can reach a client late through a proxy).
      expect(await c.next("moved")).toEqual({ type: "moved" });
      expect((await c.closed).code).toBe(ROOM_CLOSE.moved);
    }

    // Everyone comes back through the same URL with ?since= and lands on a shard of the big room.
    const back = await Promise.all(
      everyone.map((c) => join(room, c.welcome.user.userId, { role: c.welcome.user.role, since: ids(c).at(-1) ?? lastSeen })),
    );
    for (const [i, c] of back.entries()) {
      expect(c.welcome.mode).toBe("big");
      expect(c.welcome.connectionId.startsWith(`${homeShard(c.welcome.user.userId, settings.roomShards)}.`)).toBe(true);
      expect(c.welcome.resume?.complete).toBe(true);
      // Before the move, then the resume: every message once, in order (the resume holds only the one sent during the move).
      const seen = [...everyone[i]!.welcome.messages.map((m) => m.id), ...ids(everyone[i]!), ...c.welcome.messages.map((m) => m.id)];
      expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
      expect(c.welcome.room.stream).toMatchObject({ streamId: "s1", status: "live" });
    }
    expect(back[1]!.welcome.messages.map((m) => m.text)).toEqual(["during the move"]);

    // Ids continue where the small room stopped, for everyone, once.
    back[1]!.send({ type: "send", text: "after", clientId: "c7" });
    for (const c of back) expect((await c.next("message", (f) => f.message.text === "after")).message.id).toBe(7);

    // What the small room knew is the big room's now: bans, applied events, history over HTTP.
    const refused = await upgrade(`/parties/room/${room}`, { token: await tokenFor("troll") });
    expect(refused.status).toBe(403);
    expect(await (await post(room, live)).json()).toEqual({ applied: false });
    const history = await exports.default.fetch(`http://edge/parties/room/${room}/history?limit=10`, { headers: { authorization: `Bearer ${await tokenFor("reader")}` } });
    expect(((await history.json()) as { messages: { id: number; text: string }[] }).messages.map((m) => `${m.id}:${m.text}`)).toEqual([
      "1:m1", "2:m2", "3:m3", "4:m4", "5:m5", "6:during the move", "7:after",
    ]);
    // The operators' view finds it, and presence counts come from the shards.
    const stats = await exports.default.fetch(`http://edge/internal/bigrooms/${room}/stats`, { headers: { authorization: `Bearer ${env.INTERNAL_API_TOKEN}` } });
    expect(stats.status).toBe(200);
    await waitFor("the big room's count", async () => (await env.Room.getByName(room).presenceCount()) === back.length);
    // Each user left the small room once (the media side's presence), and chat after the move is the coordinator's.
    await waitFor("leaves at the bridge", () => bridge.stored.filter((e) => e.type === "presence.update" && (e.data as { roomId: string; change: string }).roomId === room && (e.data as { change: string }).change === "leave").length >= everyone.length);
    await waitFor("chat events at the bridge", () => bridge.stored.filter((e) => e.type === "chat.message" && (e.data as { roomId: string }).roomId === room).length === 7);
    for (const c of back) c.close();
  });

  it("keeps a moderator's action and a chat message sent while the history is handed over, in order", async () => {
    const room = newRoom("grow");
    const mod = await join(room, "mod", { role: "moderator" });
    const others: Awaited<ReturnType<typeof join>>[] = [];
    for (let i = 0; others.length < AT - 2; i++) others.push(await join(room, `o${i}`));
    mod.send({ type: "send", text: "first" });
    const first = (await others[0]!.next("message")).message.id;
    const last = await join(room, "last");
    // Both reach the room while it moves: held, then applied by the coordinator in arrival order.
    others[0]!.send({ type: "send", text: "held" });
    mod.send({ type: "delete", messageId: first });
    await mod.closed;
    const again = await join(room, "mod", { role: "moderator", since: 0 });
    expect(again.welcome.mode).toBe("big");
    expect(again.welcome.messages.map((m) => [m.id, m.text, m.deleted ?? false])).toEqual([
      [first, "", true],
      [first + 1, "held", false],
    ]);
    again.close();
    for (const c of [...others, last]) c.close();
  });
});
