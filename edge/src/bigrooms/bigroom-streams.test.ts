// A big room that is an API stream's room behaves as the small room does (streams/room-*.ts): each viewer sees
// playback URLs through /play with a token of their own (never the media node's URLs), in the welcome on any
// shard and in the stream.live frame, and the stream's owner moderates the room.
import { decodeJwt } from "jose";
import { describe, expect, it } from "vitest";
import { makeEvent } from "../../../shared/envelope.ts";
import { join } from "../../test/clients.ts";
import { createStream, env, newUser } from "../../test/streams.ts";
import { edgeSettings } from "../settings.ts";
import { homeShard } from "./placement.ts";

const SHARDS = edgeSettings(env).roomShards;

const live = (streamId: string, roomId: string) =>
  makeEvent(
    "stream.live",
    { streamId, roomId, nodeId: "node-a", playbackUrl: `http://media-node.example/media/live/${streamId}/brd_1/master.m3u8`, renditions: [{ name: "720p", bandwidth: 3_000_000 }], broadcastId: "brd_1", masterKey: `live/${streamId}/brd_1/master.m3u8` },
    { source: "media-node", subject: streamId },
  );

/** A user id (from `label`) whose home shard is `shard`. */
function userOn(shard: number, label: string): string {
  for (let k = 0; ; k++) if (homeShard(`${label}${k}`, SHARDS) === shard) return `${label}${k}`;
}

const tokenOf = (url: string) => decodeJwt(url.split("/play/")[1]!.split("/")[0]!);

describe("a big room of a stream made through the Streams API", () => {
  it("gives each viewer their own /play URL on every shard, and lets the stream's owner moderate", async () => {
    const owner = newUser("owner");
    const roomId = newUser("big-stream");
    const s = await createStream(owner, { roomId, playbackPolicy: "signed" }, [roomId]);
    expect(s.roomId).toBe(roomId);
    const alice = userOn(0, newUser("alice"));
    const bob = userOn(3, newUser("bob"));
    const a = await join(roomId, alice, { role: "viewer" });
    const b = await join(roomId, bob);
    expect(a.welcome.mode).toBe("big");
    await env.RoomCoordinator.getByName(roomId).applyEvent(live(s.id, roomId));
    const fa = await a.next("event", (f) => (f.event as { type: string }).type === "stream.live");
    const fb = await b.next("event", (f) => (f.event as { type: string }).type === "stream.live");
    expect(tokenOf((fa.event.data as { playbackUrl: string }).playbackUrl)).toMatchObject({ sub: s.id, vid: alice });
    expect(tokenOf((fb.event.data as { playbackUrl: string }).playbackUrl)).toMatchObject({ sub: s.id, vid: bob });
    expect(JSON.stringify([...a.received, ...b.received])).not.toContain("media-node.example");
    // A late joiner on another shard: its welcome names the stream live, with its own URL.
    const carol = userOn(2, newUser("carol"));
    const c = await join(roomId, carol, { role: "viewer" });
    expect(c.welcome.room.stream).toMatchObject({ streamId: s.id, status: "live" });
    expect(tokenOf(c.welcome.room.stream!.playbackUrl!)).toMatchObject({ sub: s.id, vid: carol });
    expect(JSON.stringify(c.welcome)).not.toContain("media-node.example");

    // The owner (role broadcaster, which alone moderates nowhere) deletes and kicks; another broadcaster may not.
    const caster = await join(roomId, owner, { role: "broadcaster" });
    const other = await join(roomId, newUser("other"), { role: "broadcaster" });
    b.send({ type: "send", text: "spam" });
    const spam = (await caster.next("message")).message;
    other.send({ type: "delete", messageId: spam.id });
    expect(await other.next("error")).toMatchObject({ code: "forbidden", ref: "delete" });
    caster.send({ type: "delete", messageId: spam.id });
    expect(await a.next("deleted")).toMatchObject({ messageId: spam.id, by: owner });
    caster.send({ type: "kick", userId: bob });
    expect((await b.closed).code).toBe(4001);
    for (const x of [a, c, caster, other]) x.close();
  });
});
