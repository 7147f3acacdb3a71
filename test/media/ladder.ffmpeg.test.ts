// Good token -> an HLS ladder appears in storage as the broadcast goes; the broadcaster leaves -> ENDLIST, the
// VOD playlist of the whole broadcast, and the lifecycle events on NATS. Every rung is opened with ffprobe.

import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LiveSession } from "../../media-node/src/live/session.ts";
import { probeFmp4Segment, publishTestSource, sentSeconds } from "../helpers/ffmpeg.ts";
import type { GroupProcess } from "../helpers/process.ts";
import { type MediaFixture, type SessionRecorder, startMediaFixture } from "./fixture.ts";
import { parsePlaylist } from "../helpers/hls.ts";

describe("live ladder: RTMP in, fMP4 HLS ladder out", () => {
  let fx: MediaFixture;
  let publisher: GroupProcess | undefined;
  let session: LiveSession;
  let rec: SessionRecorder;
  const SEGMENT_S = 2;

  beforeAll(async () => {
    fx = await startMediaFixture({ MEDIA_SEGMENT_S: String(SEGMENT_S), MEDIA_RECONNECT_GRACE_S: "1" });
  });
  afterAll(async () => {
    await publisher?.kill();
    await fx?.stop();
  });

  it("publishes with a good token and the master + every rung's playlist appear in storage, then stream.live", async () => {
    const began = fx.nextSession("ladder1");
    // The broadcast goes on until the test ends it (the third test), however long the first two take.
    publisher = publishTestSource(`${fx.rtmpBase}/live/ladder1?token=${await fx.token("ladder1", { room: "room-1" })}`, { size: "640x360", progress: true });
    rec = await began;
    session = rec.session;
    const live = await rec.whenLive();
    expect(live.playbackUrl).toBe(fx.store.publicUrl(session.masterKey));

    const master = await fx.store.get(session.masterKey);
    expect(master?.contentType).toBe("application/vnd.apple.mpegurl");
    expect(master?.cacheControl).toBe("public, max-age=1");
    const m = parsePlaylist(new TextDecoder().decode(master!.body));
    expect(m.playlists.map((p: { uri: string }) => p.uri)).toEqual(["360p/index.m3u8", "240p/index.m3u8"]);
    // the audio is encoded once, as a rendition every variant plays with
    expect(m.mediaGroups.AUDIO.aud.audio.uri).toBe("audio/index.m3u8");
    expect(await fx.store.head(`${session.keyBase}/audio/index.m3u8`)).not.toBeNull();
    for (const p of m.playlists) {
      expect(p.attributes.AUDIO).toBe("aud");
      expect(p.attributes.BANDWIDTH).toBeGreaterThan(Number(p.attributes["AVERAGE-BANDWIDTH"]));
      expect(p.attributes.CODECS).toMatch(/^avc1\.6400[0-9a-f]{2},mp4a\.40\.2$/);
      expect(p.attributes["FRAME-RATE"]).toBe(30);
      // every playlist the master lists is already stored (never a 404 from a playlist)
      expect(await fx.store.head(`${session.keyBase}/${p.uri}`)).not.toBeNull();
    }
    expect(m.playlists[0].attributes.RESOLUTION).toEqual({ width: 640, height: 360 });
    expect(m.playlists[1].attributes.RESOLUTION).toEqual({ width: 426, height: 240 });
    expect(new TextDecoder().decode(master!.body)).toContain("#EXT-X-INDEPENDENT-SEGMENTS");

    // the stable per-stream URL points at this broadcast's playlists
    const alias = parsePlaylist(new TextDecoder().decode((await fx.store.get("live/ladder1/live.m3u8"))!.body));
    expect(alias.playlists.map((p: { uri: string }) => p.uri)).toEqual([`${session.broadcastId}/360p/index.m3u8`, `${session.broadcastId}/240p/index.m3u8`]);
    expect(alias.mediaGroups.AUDIO.aud.audio.uri).toBe(`${session.broadcastId}/audio/index.m3u8`);

    const started = await fx.waitForEvent("stream.started", (e) => e.data.streamId === "ladder1");
    expect(started).toMatchObject({ source: "media-node/test-node", subject: "stream/ladder1", data: { roomId: "room-1", resumed: false, app: "live", broadcastId: session.broadcastId } });
    const liveEvent = await fx.waitForEvent("stream.live", (e) => e.data.streamId === "ladder1");
    expect(liveEvent.data.playbackUrl).toBe(live.playbackUrl);
    // storage keys beside the URLs: the edge builds viewers' /play URLs from them
    expect(liveEvent.data).toMatchObject({ broadcastId: session.broadcastId, masterKey: session.masterKey });
    expect(liveEvent.data.renditions.map((r) => [r.name, r.height])).toEqual([
      ["360p", 360],
      ["240p", 240],
      ["audio", undefined],
    ]);
  });

  it("lists only stored segments in live playlists while the broadcast goes on", async () => {
    // Wait for a few more segments (of any rung), then check each live playlist while the broadcast is still on.
    const before = rec.segments.length;
    await rec.until("4 more segments", () => rec.segments.length >= before + 4);
    expect(rec.ended).toBeUndefined();
    for (const rung of ["360p", "240p", "audio"]) {
      const obj = await fx.store.get(`${session.keyBase}/${rung}/index.m3u8`);
      const pl = parsePlaylist(new TextDecoder().decode(obj!.body));
      expect(pl.endList).toBeUndefined();
      expect(pl.segments.length).toBeGreaterThanOrEqual(1);
      for (const s of pl.segments) expect(await fx.store.head(`${session.keyBase}/${rung}/${s.uri}`), s.uri).not.toBeNull();
    }
  });

  it("ends with ENDLIST and stores the VOD playlist when the broadcaster leaves; stream.ended and media.ready follow", async () => {
    // At least four full segments per video rung (the last test looks inside them), then the broadcaster leaves.
    for (const rung of ["360p", "240p"]) await rec.segmentCount(4, rung);
    await publisher!.stop();
    const sentS = sentSeconds(publisher!);
    const ended = await rec.whenEnded();
    expect(ended.reason).toBe("publisher-left");
    // the whole broadcast is there, last second included
    expect(sentS).toBeGreaterThan(4 * SEGMENT_S);
    expect(ended.durationS).toBeGreaterThan(sentS - 1);
    expect(ended.durationS).toBeLessThan(sentS + 1.5);
    expect(ended.vodUrl).toBe(fx.store.publicUrl(session.vodKey));

    const vodMaster = parsePlaylist(new TextDecoder().decode((await fx.store.get(session.vodKey))!.body));
    expect(vodMaster.playlists.map((p: { uri: string }) => p.uri)).toEqual(["360p/vod.m3u8", "240p/vod.m3u8"]);
    expect(vodMaster.mediaGroups.AUDIO.aud.audio.uri).toBe("audio/vod.m3u8");
    for (const rung of ["360p", "240p", "audio"]) {
      const live = parsePlaylist(new TextDecoder().decode((await fx.store.get(`${session.keyBase}/${rung}/index.m3u8`))!.body));
      expect(live.endList).toBe(true);
      const vod = parsePlaylist(new TextDecoder().decode((await fx.store.get(`${session.keyBase}/${rung}/vod.m3u8`))!.body));
      expect(vod.playlistType).toBe("VOD");
      expect(vod.endList).toBe(true);
      const total = vod.segments.reduce((t: number, s: { duration: number }) => t + s.duration, 0);
      // audio segments end on AAC frame boundaries (1024 samples), so they may differ by a frame or so
      expect(Math.abs(total - ended.durationS)).toBeLessThan(rung === "audio" ? 0.2 : 0.1);
    }
    const endedEvent = await fx.waitForEvent("stream.ended", (e) => e.data.streamId === "ladder1");
    expect(endedEvent.data).toMatchObject({ reason: "publisher-left", vodUrl: ended.vodUrl, roomId: "room-1", broadcastId: session.broadcastId, vodKey: session.vodKey });
    const ready = await fx.waitForEvent("media.ready", (e) => e.data.streamId === "ladder1");
    expect(ready.data).toMatchObject({ mediaId: session.broadcastId, playbackUrl: ended.vodUrl, ownerId: "broadcaster-1", playlistKey: session.vodKey });
    // local work files are gone once everything is stored
    expect(fx.node.uploader.stats().pending).toBe(0);
  });

  it("every rung: one IDR at the start of each segment, durations within target, rungs aligned", async () => {
    const rungs = ["360p", "240p"];
    const perRung: { durations: number[]; starts: number[] }[] = [];
    for (const rung of rungs) {
      const vod = parsePlaylist(new TextDecoder().decode((await fx.store.get(`${session.keyBase}/${rung}/vod.m3u8`))!.body));
      const durations: number[] = [];
      const starts: number[] = [];
      const segments = vod.segments as { uri: string; duration: number; map: { uri: string } }[];
      expect(segments.length).toBeGreaterThanOrEqual(4);
      for (const [i, s] of segments.entries()) {
        const probed = await probeFmp4Segment(join(fx.storeDir, session.keyBase, rung, s.map.uri), join(fx.storeDir, session.keyBase, rung, s.uri));
        expect(probed.video.length, `${rung} ${s.uri} frames`).toBeGreaterThan(0);
        expect(probed.video[0]!.key, `${rung} ${s.uri} starts with a keyframe`).toBe(true);
        expect(probed.video[0]!.pictType).toBe("I");
        expect(probed.video.filter((f) => f.key), `${rung} ${s.uri} has exactly one IDR`).toHaveLength(1);
        expect(probed.audioPackets, `${rung} ${s.uri} is video only (audio is its own rendition)`).toBe(0);
        expect(s.duration).toBeLessThanOrEqual(SEGMENT_S + 0.05);
        if (i < segments.length - 1) {
          // full segments: 2 s at 30 fps = 60 frames, as forced
          expect(probed.video).toHaveLength(SEGMENT_S * 30);
          expect(Math.abs(s.duration - SEGMENT_S)).toBeLessThan(0.05);
        }
        durations.push(s.duration);
        starts.push(probed.video[0]!.ptsS);
      }
      perRung.push({ durations, starts });
    }
    // the audio rendition: AAC in every segment, durations within target
    const audio = parsePlaylist(new TextDecoder().decode((await fx.store.get(`${session.keyBase}/audio/vod.m3u8`))!.body));
    for (const s of audio.segments as { uri: string; duration: number; map: { uri: string } }[]) {
      const probed = await probeFmp4Segment(join(fx.storeDir, session.keyBase, "audio", s.map.uri), join(fx.storeDir, session.keyBase, "audio", s.uri));
      expect(probed.video).toHaveLength(0);
      expect(probed.audioPackets, `audio ${s.uri}`).toBeGreaterThan(0);
      expect(s.duration).toBeLessThanOrEqual(SEGMENT_S + 0.5);
    }
    const [a, b] = perRung as [(typeof perRung)[0], (typeof perRung)[0]];
    expect(b.durations).toHaveLength(a.durations.length);
    a.durations.forEach((d, i) => expect(Math.abs(d - b.durations[i]!), `segment ${i} duration aligned`).toBeLessThan(0.05));
    a.starts.forEach((t, i) => expect(Math.abs(t - b.starts[i]!), `segment ${i} start aligned`).toBeLessThan(0.05));
  });
});
