// A node that cannot keep up, through the real media node (RTMP in, FFmpeg, fs storage, NATS):
// - a ladder slower than the threshold sheds its top rung: a new run without it, the master stops listing it,
//   pulsecast_rungs_shed_total counts it and stream.degraded says so; the last rung is never shed;
// - a node already encoding MEDIA_MAX_LIVE_STREAMS refuses a new stream (the broadcaster is told why, the
//   refusal is counted), while a broadcaster coming back to its own stream within the grace window is not.
// The threshold is set above what any live ladder can reach (a live input cannot be encoded faster than it
// arrives: 1x), so "too slow" is certain here without depending on how loaded the machine is.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Envelope } from "../../shared/envelope.ts";
import { parsePlaylist } from "../helpers/hls.ts";
import { publishTestSource } from "../helpers/ffmpeg.ts";
import type { GroupProcess } from "../helpers/process.ts";
import { type MediaFixture, startMediaFixture } from "./fixture.ts";

async function metric(fx: MediaFixture, line: RegExp): Promise<number> {
  const text = await (await fetch(`${fx.node.opsUrl}/metrics`)).text();
  const m = text.split("\n").find((l) => line.test(l));
  return m ? Number(m.split(" ").at(-1)) : 0;
}

describe("overload: shedding rungs and refusing streams (real FFmpeg)", () => {
  let fx: MediaFixture;
  const publishers: GroupProcess[] = [];

  beforeAll(async () => {
    fx = await startMediaFixture({
      MEDIA_SEGMENT_S: "1",
      MEDIA_LADDER: "360p,240p",
      MEDIA_SHED_BELOW_SPEED: "5",
      MEDIA_SHED_AFTER_S: "2",
      MEDIA_MAX_LIVE_STREAMS: "1",
      MEDIA_RECONNECT_GRACE_S: "30",
    });
  });
  afterAll(async () => {
    await Promise.all(publishers.map((p) => p.kill()));
    await fx?.stop();
  });

  it("sheds the top rung when the ladder stays below the speed threshold, and never the last one", async () => {
    const next = fx.nextSession("shed1");
    publishers.push(publishTestSource(`${fx.rtmpBase}/live/shed1?token=${await fx.token("shed1", { room: "room-shed" })}`, { size: "640x360" }));
    const rec = await next;
    await rec.whenLive();
    const degraded = (await fx.waitForEvent("stream.degraded", (e) => e.data.streamId === "shed1", 60_000)) as Extract<Envelope, { type: "stream.degraded" }>;
    expect(degraded.data).toMatchObject({ roomId: "room-shed", nodeId: "test-node", shed: ["360p"] });
    expect(degraded.data.renditions.map((r) => r.name)).toEqual(["240p", "audio"]);
    expect(degraded.data.speed).toBeLessThan(5);
    // a new run encodes the kept rungs, continuing the same playlists after a discontinuity
    const shedRun = await rec.until("a run started for the shed", () => rec.runs.find((r) => r.reason === "shed"));
    const after = await rec.until("a 240p segment of the new run", () => rec.segments.find((s) => s.variant === "240p" && s.epoch === shedRun.epoch));
    expect(after.discontinuity).toBe(true);
    const text = async (key: string) => new TextDecoder().decode((await fx.store.get(key))!.body);
    const master = parsePlaylist(await text(rec.session.masterKey));
    expect(master.playlists.map((p: { uri: string }) => p.uri)).toEqual(["240p/index.m3u8"]);
    expect(await text(`${rec.session.keyBase}/360p/index.m3u8`)).toContain("#EXT-X-ENDLIST");
    // the stable per-stream master follows
    expect(parsePlaylist(await text(rec.session.aliasKey)).playlists.map((p: { uri: string }) => p.uri)).toEqual([`${rec.session.broadcastId}/240p/index.m3u8`]);
    expect(await metric(fx, /^pulsecast_rungs_shed_total\{rung="360p"\}/)).toBe(1);
    // still "too slow", but 240p is the last rung: more segments come, no more sheds
    await rec.nextSegments(4, "240p");
    expect(fx.events.filter((e) => e.type === "stream.degraded" && e.data.streamId === "shed1")).toHaveLength(1);
    expect(rec.runs.filter((r) => r.reason === "shed")).toHaveLength(1);
  });

  it("refuses a new stream when the node is full, says why, counts it; the same broadcaster coming back is taken", async () => {
    const refused = new Promise<{ reason: string; detail: string }>((resolve) => fx.node.ingest.on("refused", (r) => r.name === "full2" && resolve(r)));
    const second = publishTestSource(`${fx.rtmpBase}/live/full2?token=${await fx.token("full2")}`, { size: "320x180" });
    publishers.push(second);
    expect(await refused).toMatchObject({ reason: "node-full" });
    // the broadcaster is hung up on (it also got an error-level onStatus saying why, which clients may show)
    expect(await second.exited).not.toBe(0);
    expect(await metric(fx, /^pulsecast_publish_refused_total\{reason="node-full"\}/)).toBe(1);
    expect(fx.node.live.get("full2")).toBeUndefined();

    // shed1's broadcaster drops and reconnects within the grace window: its stream continues
    const rec = fx.sessions.find((s) => s.session.streamId === "shed1")!;
    await publishers[0]!.kill();
    await rec.whenState("waiting");
    publishers.push(publishTestSource(`${fx.rtmpBase}/live/shed1?token=${await fx.token("shed1", { room: "room-shed" })}`, { size: "640x360" }));
    const resumed = await rec.until("a resumed run", () => rec.runs.find((r) => r.reason === "resume"));
    await rec.until("a segment of the resumed run", () => rec.segments.find((s) => s.epoch === resumed.epoch));
    expect(await metric(fx, /^pulsecast_publish_refused_total\{reason="node-full"\}/)).toBe(1);
  });
});
