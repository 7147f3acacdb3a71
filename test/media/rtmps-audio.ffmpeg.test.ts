// RTMPS when a certificate is configured (a throwaway self-signed one made with openssl), with an audio-only
// broadcast: the ladder degenerates to one AAC variant and the master says so.

import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import m3u8Parser from "m3u8-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LiveSession } from "../../media-node/src/live/session.ts";
import { probeFmp4Segment, publishTestSource } from "../helpers/ffmpeg.ts";
import { freePort } from "../helpers/ports.ts";
import { type GroupProcess, run } from "../helpers/process.ts";
import { type MediaFixture, startMediaFixture } from "./fixture.ts";

describe("RTMPS ingest of an audio-only broadcast", () => {
  let fx: MediaFixture;
  let certDir: string;
  let rtmpsPort: number;
  let publisher: GroupProcess | undefined;

  beforeAll(async () => {
    certDir = await mkdtemp(join(tmpdir(), "pulsecast-cert-"));
    const made = await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", join(certDir, "key.pem"), "-out", join(certDir, "cert.pem")]);
    if (made.code !== 0) throw new Error(`openssl failed: ${made.stderr}`);
    rtmpsPort = await freePort();
    fx = await startMediaFixture({ MEDIA_RTMPS_PORT: String(rtmpsPort), MEDIA_RTMPS_CERT: join(certDir, "cert.pem"), MEDIA_RTMPS_KEY: join(certDir, "key.pem"), MEDIA_RECONNECT_GRACE_S: "1" });
  });
  afterAll(async () => {
    await publisher?.kill();
    await fx?.stop();
    await rm(certDir, { recursive: true, force: true });
  });

  it("accepts a publish over TLS and serves an audio-only HLS variant", async () => {
    const started = once(fx.node.live, "session") as Promise<[LiveSession]>;
    publisher = publishTestSource(`rtmps://127.0.0.1:${rtmpsPort}/live/radio?token=${await fx.token("radio")}`, { video: false, durationS: 5 });
    const [session] = await started;
    await once(session, "live");
    const master = new TextDecoder().decode((await fx.store.get(session.masterKey))!.body);
    const parser = new m3u8Parser.Parser();
    parser.push(master);
    parser.end();
    expect(parser.manifest.playlists).toHaveLength(1);
    expect(parser.manifest.playlists[0].uri).toBe("audio/index.m3u8");
    expect(parser.manifest.playlists[0].attributes.CODECS).toBe("mp4a.40.2");
    expect(master).not.toContain("RESOLUTION");

    const [ended] = (await once(session, "ended", { signal: AbortSignal.timeout(30_000) })) as [{ durationS: number; reason: string }];
    expect(ended.reason).toBe("publisher-left");
    expect(ended.durationS).toBeGreaterThan(4);
    const vod = new m3u8Parser.Parser();
    vod.push(new TextDecoder().decode((await fx.store.get(`${session.keyBase}/audio/vod.m3u8`))!.body));
    vod.end();
    const first = vod.manifest.segments[0] as { uri: string; map: { uri: string } };
    const probed = await probeFmp4Segment(join(fx.storeDir, session.keyBase, "audio", first.map.uri), join(fx.storeDir, session.keyBase, "audio", first.uri));
    expect(probed.video).toHaveLength(0);
    expect(probed.audioPackets).toBeGreaterThan(0);
  });
});
