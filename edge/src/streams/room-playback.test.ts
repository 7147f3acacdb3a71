import { decodeJwt } from "jose";
import { describe, expect, it } from "vitest";
import { makeEvent } from "../../../shared/envelope.ts";
import { join, tokenFor, upgrade, wrapSocket } from "../../test/clients.ts";
import { createStream, edge, env, newUser } from "../../test/streams.ts";

const live = (streamId: string, roomId?: string) =>
  makeEvent(
    "stream.live",
    { streamId, ...(roomId ? { roomId } : {}), nodeId: "node-a", playbackUrl: `http://media-node.example/media/live/${streamId}/brd_1/master.m3u8`, renditions: [{ name: "720p", bandwidth: 3_000_000 }], broadcastId: "brd_1", masterKey: `live/${streamId}/brd_1/master.m3u8` },
    { source: "media-node", subject: streamId },
  );

async function putMaster(streamId: string): Promise<void> {
  await env.MEDIA!.put(`live/${streamId}/live.m3u8`, "#EXTM3U\n");
}

describe("a room's stream created through the Streams API", () => {
  it("welcome carries a URL through /play with a token minted for that viewer (signed)", async () => {
    const s = await createStream(newUser(), { playbackPolicy: "signed" });
    await putMaster(s.id);
    await env.Room.getByName(s.roomId).applyEvent(live(s.id));
    const alice = newUser("alice");
    const bob = newUser("bob");
    const a = await join(s.roomId, alice);
    const b = await join(s.roomId, bob);
    const urlA = a.welcome.room.stream!.playbackUrl!;
    const urlB = b.welcome.room.stream!.playbackUrl!;
    expect(urlA).toMatch(new RegExp(`^${env.PLAYBACK_BASE_URL}/play/[^/]+\\.[^/]+\\.[^/]+/live\\.m3u8$`));
    expect(urlA).not.toBe(urlB);
    const token = urlA.split("/play/")[1]!.split("/")[0]!;
    expect(decodeJwt(token)).toMatchObject({ sub: s.id, vid: alice });
    expect(JSON.stringify(a.welcome)).not.toContain("media-node.example");
    const res = await edge(new URL(urlA).pathname);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    a.close();
    b.close();
  });

  it("the stream.live frame carries each viewer's own URL, and a public stream's id URL", async () => {
    const s = await createStream(newUser(), { playbackPolicy: "signed" });
    const alice = newUser("alice");
    const bob = newUser("bob");
    const a = await join(s.roomId, alice);
    const b = await join(s.roomId, bob);
    await env.Room.getByName(s.roomId).applyEvent(live(s.id));
    const fa = await a.next("event", (f) => (f.event as { type: string }).type === "stream.live");
    const fb = await b.next("event", (f) => (f.event as { type: string }).type === "stream.live");
    const ua = (fa.event.data as { playbackUrl: string }).playbackUrl;
    const ub = (fb.event.data as { playbackUrl: string }).playbackUrl;
    expect(decodeJwt(ua.split("/play/")[1]!.split("/")[0]!)).toMatchObject({ sub: s.id, vid: alice });
    expect(decodeJwt(ub.split("/play/")[1]!.split("/")[0]!)).toMatchObject({ sub: s.id, vid: bob });
    a.close();
    b.close();

    const p = await createStream(newUser());
    const c = await join(p.roomId, newUser("carol"));
    await env.Room.getByName(p.roomId).applyEvent(live(p.id));
    const fc = await c.next("event", (f) => (f.event as { type: string }).type === "stream.live");
    expect((fc.event.data as { playbackUrl: string }).playbackUrl).toBe(`${env.PLAYBACK_BASE_URL}/play/${p.id}/live.m3u8`);
    c.close();
  });

  it("a client cannot plant its own playback URL with the internal header", async () => {
    const s = await createStream(newUser(), { playbackPolicy: "signed" });
    await env.Room.getByName(s.roomId).applyEvent(live(s.id));
    const forged = JSON.stringify({ streamId: s.id, root: "https://evil.example/play/x", until: 0 });
    const user = newUser("mallory");
    const res = await upgrade(`/parties/room/${s.roomId}`, { token: await tokenFor(user), headers: { "x-pulsecast-viewer-playback": forged } });
    expect(res.status).toBe(101);
    const m = wrapSocket(res.webSocket!);
    const welcome = await m.next("welcome");
    expect(welcome.room.stream!.playbackUrl).toMatch(new RegExp(`^${env.PLAYBACK_BASE_URL}/play/`));
    expect(JSON.stringify(welcome)).not.toContain("evil.example");
    m.close();
  });

  it("streams published with a command-line token keep the media node's URL", async () => {
    const roomId = `cli-${newUser()}`;
    const e = makeEvent("stream.live", { streamId: roomId, nodeId: "n", playbackUrl: "http://127.0.0.1:8000/media/live/x/master.m3u8", renditions: [] }, { source: "media-node", subject: roomId });
    await env.Room.getByName(roomId).applyEvent(e);
    const v = await join(roomId, newUser());
    expect(v.welcome.room.stream!.playbackUrl).toBe("http://127.0.0.1:8000/media/live/x/master.m3u8");
    v.close();
  });

  it("keeps the room's stream state across interruptions, with /play URLs (resume keeps live; a new broadcast starts clean)", async () => {
    const s = await createStream(newUser());
    const t0 = Date.now() - 300_000;
    const at = (sec: number) => new Date(t0 + sec * 1000);
    const meta = (sec: number) => ({ source: "media-node/n", subject: `stream/${s.id}`, time: at(sec) });
    const started = (sec: number, resumed: boolean, broadcastId: string) => makeEvent("stream.started", { streamId: s.id, nodeId: "n", app: "live", resumed, broadcastId }, meta(sec));
    const liveAt = (sec: number, broadcastId: string) =>
      makeEvent("stream.live", { streamId: s.id, nodeId: "n", playbackUrl: `http://media-node.example/media/live/${s.id}/${broadcastId}/master.m3u8`, renditions: [], broadcastId, masterKey: `live/${s.id}/${broadcastId}/master.m3u8` }, meta(sec));
    const ended = (sec: number, broadcastId: string) =>
      makeEvent("stream.ended", { streamId: s.id, nodeId: "n", durationS: sec, reason: "publisher-left", broadcastId, vodUrl: `http://media-node.example/media/live/${s.id}/${broadcastId}/vod.m3u8`, vodKey: `live/${s.id}/${broadcastId}/vod.m3u8` }, meta(sec));
    const room = env.Room.getByName(s.roomId);
    const welcome = async () => {
      const v = await join(s.roomId, newUser("late"), { role: "viewer" });
      v.close();
      return v.welcome.room.stream;
    };

    // A reconnect within the grace window, delivered before the broadcast's live event: live, through /play.
    await room.applyEvents([started(0, false, "brd_1"), started(180, true, "brd_1"), liveAt(3, "brd_1")]);
    expect(await welcome()).toEqual({ streamId: s.id, status: "live", playbackUrl: `${env.PLAYBACK_BASE_URL}/play/${s.id}/live.m3u8`, startedAt: t0, updatedAt: t0 + 3000 });

    // Its end: the recording through /play, no live URL, and never the media node's links or the storage key.
    await room.applyEvents([ended(200, "brd_1")]);
    const after = await welcome();
    expect(after).toMatchObject({ status: "ended", vodUrl: `${env.PLAYBACK_BASE_URL}/play/${s.id}/brd_1/vod.m3u8` });
    expect(after).not.toHaveProperty("playbackUrl");
    expect(JSON.stringify(after)).not.toMatch(/media-node\.example|vodKey/);

    // A late resume of the ended broadcast changes nothing; a new broadcast starts with no earlier VOD.
    await room.applyEvents([started(60, true, "brd_1")]);
    expect(await welcome()).toMatchObject({ status: "ended", vodUrl: `${env.PLAYBACK_BASE_URL}/play/${s.id}/brd_1/vod.m3u8` });
    await room.applyEvents([started(300, false, "brd_2")]);
    expect(await welcome()).toEqual({ streamId: s.id, status: "starting", startedAt: t0 + 300_000, updatedAt: t0 + 300_000 });
  });
});
