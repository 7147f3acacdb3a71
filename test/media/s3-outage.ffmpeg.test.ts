// A live stream on the s3 driver (s3rver on 127.0.0.1) while storage goes away and comes back: the node says
// "not ready", segments wait on local disk, then everything is stored in order; no segment is lost and no
// playlist ever lists a segment that is not stored.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadStorageConfig } from "../../media-node/src/storage/index.ts";
import { publishTestSource, sentSeconds } from "../helpers/ffmpeg.ts";
import type { GroupProcess } from "../helpers/process.ts";
import { type S3Server, startS3 } from "../helpers/s3.ts";
import { waitFor } from "../helpers/wait.ts";
import { type MediaFixture, startMediaFixture } from "./fixture.ts";
import { parsePlaylist } from "../helpers/hls.ts";

describe("live stream on S3 through a storage outage", () => {
  let s3: S3Server;
  let fx: MediaFixture;
  let publisher: GroupProcess | undefined;

  beforeAll(async () => {
    s3 = await startS3();
    const storage = loadStorageConfig({ ...s3.env, S3_REQUEST_TIMEOUT_MS: "2000", S3_MAX_ATTEMPTS: "1", UPLOAD_RETRY_BASE_MS: "100", UPLOAD_RETRY_MAX_MS: "500" });
    fx = await startMediaFixture({ MEDIA_LADDER: "240p", MEDIA_SEGMENT_S: "1", MEDIA_RECONNECT_GRACE_S: "1", MEDIA_HEALTH_TIMEOUT_MS: "1000" }, { storage });
  });
  afterAll(async () => {
    await publisher?.kill();
    await fx?.stop();
    await s3?.stop();
  });

  it("keeps every segment and the playlist order across the outage", async () => {
    const began = fx.nextSession("outage");
    // The broadcast goes on until the test has seen the outage through, then the broadcaster leaves.
    publisher = publishTestSource(`${fx.rtmpBase}/live/outage?token=${await fx.token("outage")}`, { size: "426x240", progress: true });
    const rec = await began;
    const session = rec.session;
    await rec.whenLive();
    expect(session.playbackUrl.startsWith(s3.endpoint)).toBe(true);

    // Storage goes away: segments pile up locally, the node is not ready.
    await s3.halt();
    await waitFor("segments waiting for storage", () => fx.node.uploader.stats().pending >= 3, 20_000);
    const health = await fetch(`${fx.node.opsUrl}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: "not ready", checks: { storage: { ok: false }, rtmp: { ok: true } } });

    // Storage is back: the backlog drains, the stream goes on and ends normally.
    await s3.start();
    await waitFor("the backlog to drain", () => fx.node.uploader.stats().pending === 0, 60_000);
    // the stream goes on: segments made after the outage are stored too; then the broadcaster leaves
    await rec.nextSegments(2);
    await publisher.stop();
    const sentS = sentSeconds(publisher);
    const ended = await rec.whenEnded(90_000);
    expect(ended.reason).toBe("publisher-left");
    // nothing lost: the stream is as long as the broadcast
    expect(ended.durationS).toBeGreaterThan(sentS - 1);
    expect((await fetch(`${fx.node.opsUrl}/healthz`)).status).toBe(200);

    const vod = parsePlaylist(new TextDecoder().decode((await fx.store.get(`${session.keyBase}/240p/vod.m3u8`))!.body));
    const uris = vod.segments.map((s: { uri: string }) => s.uri);
    // one FFmpeg run, every index from 0 with no gap, nothing marked discontinuous
    expect(uris).toEqual(uris.map((_: string, i: number) => `e0-${i}.m4s`));
    expect(vod.segments.some((s: { discontinuity?: boolean }) => s.discontinuity)).toBe(false);
    for (const uri of uris) expect(await fx.store.head(`${session.keyBase}/240p/${uri}`), uri).not.toBeNull();
    const live = parsePlaylist(new TextDecoder().decode((await fx.store.get(`${session.keyBase}/240p/index.m3u8`))!.body));
    expect(live.endList).toBe(true);
    expect(fx.node.uploader.stats().pending).toBe(0);
    const metrics = await (await fetch(`${fx.node.opsUrl}/metrics`)).text();
    expect(metrics).toMatch(/pulsecast_upload_failures_total\{kind="segment"\} [1-9]/);
  });
});
