// RTMPS when a certificate is configured (a throwaway self-signed one made with openssl), with an audio-only
// broadcast: the ladder degenerates to one AAC variant and the master says so. The same node has the
// passthrough rung on: a video broadcast gets its H.264 copied as a `source` variant next to the encoded ones;
// and a moderator can kick a broadcaster.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeFmp4Segment, publishTestSource, sentSeconds } from "../helpers/ffmpeg.ts";
import { freePort } from "../helpers/ports.ts";
import { type GroupProcess, run } from "../helpers/process.ts";
import { type MediaFixture, startMediaFixture } from "./fixture.ts";
import { parsePlaylist } from "../helpers/hls.ts";

describe("RTMPS, audio-only, passthrough, kick", () => {
  let fx: MediaFixture;
  let certDir: string;
  let rtmpsPort: number;
  let publisher: GroupProcess | undefined;

  beforeAll(async () => {
    certDir = await mkdtemp(join(tmpdir(), "pulsecast-cert-"));
    const made = await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", join(certDir, "key.pem"), "-out", join(certDir, "cert.pem")]);
    if (made.code !== 0) throw new Error(`openssl failed: ${made.stderr}`);
    rtmpsPort = await freePort();
    fx = await startMediaFixture({ MEDIA_RTMPS_PORT: String(rtmpsPort), MEDIA_RTMPS_CERT: join(certDir, "cert.pem"), MEDIA_RTMPS_KEY: join(certDir, "key.pem"), MEDIA_RECONNECT_GRACE_S: "1", MEDIA_PASSTHROUGH: "true" });
  });
  afterAll(async () => {
    await publisher?.kill();
    await fx?.stop();
    await rm(certDir, { recursive: true, force: true });
  });

  it("accepts a publish over TLS and serves an audio-only HLS variant", async () => {
    const began = fx.nextSession("radio");
    // NMS replays to a new pull only from the last video keyframe, so an audio-only stream reaches the node's FFmpeg
    // from the moment its pull connects: what the publisher had sent by then (its last progress report) is not
    // the node's to record. The last pull of the stream is FFmpeg's (the source probe pulls before it).
    let sentAtPull = 0;
    const onPull = ({ path }: { path: string }) => {
      if (path !== "/live/radio") return;
      try {
        sentAtPull = sentSeconds(publisher!);
      } catch {
        sentAtPull = 0; // no progress report yet: nothing sent is unaccounted for
      }
    };
    fx.node.ingest.on("pull", onPull);
    publisher = publishTestSource(`rtmps://127.0.0.1:${rtmpsPort}/live/radio?token=${await fx.token("radio")}`, { video: false, durationS: 5, progress: true });
    const rec = await began;
    const session = rec.session;
    await rec.whenLive();
    const master = new TextDecoder().decode((await fx.store.get(session.masterKey))!.body);
    const masterPlaylist = parsePlaylist(master);
    expect(masterPlaylist.playlists).toHaveLength(1);
    expect(masterPlaylist.playlists[0].uri).toBe("audio/index.m3u8");
    expect(masterPlaylist.playlists[0].attributes.CODECS).toBe("mp4a.40.2");
    expect(master).not.toContain("RESOLUTION");

    // recorded from FFmpeg's pull to the publisher's last packet: a short clip may well have ended while the
    // master was being read. The allowance covers the progress report's period (0.5 s) and AAC frame and segment
    // rounding; a recording that lost its end, or more than the pull missed, falls below it.
    const ended = await rec.whenEnded(30_000);
    await publisher.exited;
    fx.node.ingest.off("pull", onPull);
    const sent = sentSeconds(publisher);
    expect(sent).toBeGreaterThan(4.5);
    expect(ended.reason).toBe("publisher-left");
    expect(ended.durationS).toBeGreaterThan(sent - sentAtPull - 0.75);
    expect(ended.durationS).toBeLessThanOrEqual(sent + 0.5);
    const vod = parsePlaylist(new TextDecoder().decode((await fx.store.get(`${session.keyBase}/audio/vod.m3u8`))!.body));
    const first = vod.segments[0] as { uri: string; map: { uri: string } };
    const probed = await probeFmp4Segment(join(fx.storeDir, session.keyBase, "audio", first.map.uri), join(fx.storeDir, session.keyBase, "audio", first.uri));
    expect(probed.video).toHaveLength(0);
    expect(probed.audioPackets).toBeGreaterThan(0);
  });

  it("copies an H.264 source as a passthrough variant next to the encoded rungs; a kick ends the stream", async () => {
    const began = fx.nextSession("copycat");
    publisher = publishTestSource(`${fx.rtmpBase}/live/copycat?token=${await fx.token("copycat")}`, { size: "426x240" });
    const rec = await began;
    const session = rec.session;
    await rec.whenLive();
    const masterPlaylist = parsePlaylist(new TextDecoder().decode((await fx.store.get(session.masterKey))!.body));
    const variants = masterPlaylist.playlists as { uri: string; attributes: { CODECS: string; RESOLUTION: { width: number; height: number } } }[];
    expect(variants.map((v) => v.uri).sort()).toEqual(["240p/index.m3u8", "source/index.m3u8"]);
    const source = variants.find((v) => v.uri.startsWith("source/"))!;
    expect(source.attributes.CODECS).toMatch(/^avc1\.[0-9a-f]{6},mp4a\.40\.2$/);
    expect(source.attributes.RESOLUTION).toEqual({ width: 426, height: 240 });

    expect(await fx.node.live.kick("copycat")).toBe(true);
    expect((await rec.whenEnded(30_000)).reason).toBe("kicked");
    // the copied rung's segments are real, decodable H.264 starting with a keyframe
    const vod = parsePlaylist(new TextDecoder().decode((await fx.store.get(`${session.keyBase}/source/vod.m3u8`))!.body));
    const first = vod.segments[0] as { uri: string; map: { uri: string } };
    const probed = await probeFmp4Segment(join(fx.storeDir, session.keyBase, "source", first.map.uri), join(fx.storeDir, session.keyBase, "source", first.uri));
    expect(probed.video[0]?.key).toBe(true);
    await fx.waitForEvent("stream.ended", (e) => e.data.streamId === "copycat" && e.data.reason === "kicked");
    await publisher.exited;
  });
});
