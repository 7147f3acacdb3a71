// What the transcode really writes for sources the ladder used to get wrong, checked with ffprobe on FFmpeg's
// output: a mono portrait phone stream stays mono and upright (offline: probe -> ladder -> args -> FFmpeg), a
// recording that ends right after a segment boundary has no one-frame last segment, and the same through the
// real media node over RTMP (metadata hints, not ffprobe, describe the source there).

import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LiveSession } from "../../media-node/src/live/session.ts";
import { buildLiveArgs, toArgv } from "../../media-node/src/transcode/args.ts";
import { selectLadder } from "../../media-node/src/transcode/ladder.ts";
import { probeSource } from "../../media-node/src/transcode/probe.ts";
import { parsePlaylist } from "../helpers/hls.ts";
import { type GroupProcess, run, spawnGroup } from "../helpers/process.ts";
import { type MediaFixture, startMediaFixture } from "./fixture.ts";

interface Stream {
  codec_type: string;
  width?: number;
  height?: number;
  channels?: number;
}

/** ffprobe of one fMP4 segment joined to its init segment (`dir` takes the joined file). */
async function probeJoined(dir: string, init: Uint8Array, segment: Uint8Array): Promise<Stream[]> {
  const joined = join(dir, `probe-${Math.random().toString(36).slice(2)}.mp4`);
  await writeFile(joined, Buffer.concat([init, segment]));
  const { code, stdout, stderr } = await run("ffprobe", ["-v", "error", "-show_streams", "-of", "json", joined]);
  if (code !== 0) throw new Error(`ffprobe failed on ${joined}: ${stderr}`);
  return (JSON.parse(stdout) as { streams: Stream[] }).streams;
}

/** ffprobe of the first segment FFmpeg listed for `variant` under `outDir`. */
async function probeFirstSegment(outDir: string, variant: string): Promise<Stream[]> {
  const vdir = join(outDir, variant);
  const first = parsePlaylist(await readFile(join(vdir, "index.m3u8"), "utf8")).segments[0] as { uri: string; map: { uri: string } };
  return probeJoined(outDir, await readFile(join(vdir, first.map.uri)), await readFile(join(vdir, first.uri)));
}

/** A generated source file: testsrc2 video and a sine tone with `channels` channels. */
async function makeSource(file: string, opts: { size: string; channels: 1 | 2; durationS: number }): Promise<void> {
  const layout = opts.channels === 1 ? "mono" : "stereo";
  const { code, stderr } = await run("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-nostdin",
    "-f", "lavfi", "-i", `testsrc2=size=${opts.size}:rate=30`,
    "-f", "lavfi", "-i", `sine=frequency=440:sample_rate=48000,aformat=channel_layouts=${layout}`,
    "-t", String(opts.durationS),
    "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
    "-f", "flv", "-y", file,
  ]);
  if (code !== 0) throw new Error(`could not generate ${file}: ${stderr}`);
}

/** Runs the live argv on a file input to the end (the offline path of the bench). */
async function transcode(input: string, outDir: string, rungs: ("720p" | "360p" | "240p")[], segmentS: number) {
  const source = await probeSource(input);
  const ladder = selectLadder(source, { rungs, passthrough: false });
  const plan = buildLiveArgs({ input, outDir, ladder, segmentS, preset: "ultrafast", listSize: 0 });
  const { code, stderr } = await run("ffmpeg", toArgv(plan));
  if (code !== 0) throw new Error(`ffmpeg failed: ${stderr.slice(-2000)}`);
  return { source, ladder, plan };
}

/** EXTINF durations of FFmpeg's own playlist of a variant. */
async function durations(dir: string, variant: string): Promise<number[]> {
  return parsePlaylist(await readFile(join(dir, variant, "index.m3u8"), "utf8")).segments.map((s: { duration: number }) => s.duration);
}

describe("transcode output (offline, real FFmpeg)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pulsecast-transcode-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("a mono 720x1280 portrait source comes out as a 720x1280 top rung with mono audio", async () => {
    const input = join(dir, "portrait-mono.flv");
    await makeSource(input, { size: "720x1280", channels: 1, durationS: 3 });
    const out = join(dir, "portrait");
    const { source, plan } = await transcode(input, out, ["720p", "360p"], 2);
    expect(source).toMatchObject({ video: { width: 720, height: 1280 }, audio: { channels: 1 } });
    expect(plan.variants.map((v) => [v.name, v.video?.width, v.video?.height])).toEqual([
      ["720p", 720, 1280],
      ["360p", 360, 640],
      ["audio", undefined, undefined],
    ]);
    const top = await probeFirstSegment(out, "720p");
    expect(top.map((s) => [s.codec_type, s.width, s.height])).toEqual([["video", 720, 1280]]);
    const low = await probeFirstSegment(out, "360p");
    expect(low.map((s) => [s.codec_type, s.width, s.height])).toEqual([["video", 360, 640]]);
    const audio = await probeFirstSegment(out, "audio");
    expect(audio.map((s) => [s.codec_type, s.channels])).toEqual([["audio", 1]]);
  });

  it("a recording that ends right after a segment boundary does not end with a one-frame segment", async () => {
    const input = join(dir, "six-seconds.flv");
    await makeSource(input, { size: "320x180", channels: 2, durationS: 6 });
    const out = join(dir, "boundary");
    await transcode(input, out, ["240p"], 2);
    const video = await durations(out, "180p");
    expect(video.length).toBeGreaterThan(0);
    // every segment but the last is a full one; the last holds more than a frame's worth (1/30 s)
    video.slice(0, -1).forEach((d, i) => expect(Math.abs(d - 2), `segment ${i}`).toBeLessThan(0.05));
    expect(video.at(-1)!, `durations ${video.join(", ")}`).toBeGreaterThan(0.5);
    const total = video.reduce((a, b) => a + b, 0);
    expect(Math.abs(total - 6)).toBeLessThan(0.05);
  });
});

describe("transcode output through the media node (RTMP in, VOD out)", () => {
  let fx: MediaFixture;
  let publisher: GroupProcess | undefined;
  const SEGMENT_S = 2;

  beforeAll(async () => {
    fx = await startMediaFixture({ MEDIA_SEGMENT_S: String(SEGMENT_S), MEDIA_RECONNECT_GRACE_S: "1", MEDIA_LADDER: "360p,240p" });
  });
  afterAll(async () => {
    await publisher?.kill();
    await fx?.stop();
  });

  it("a mono portrait broadcast of whole segments: upright rungs, mono audio, no one-frame tail in the VOD", async () => {
    const sessionStarted = once(fx.node.live, "session") as Promise<[LiveSession]>;
    const url = `${fx.rtmpBase}/live/portrait1?token=${await fx.token("portrait1")}`;
    publisher = spawnGroup("ffmpeg", [
      "-hide_banner", "-loglevel", "error", "-nostdin",
      "-re", "-f", "lavfi", "-i", "testsrc2=size=360x640:rate=30",
      "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000,aformat=channel_layouts=mono",
      "-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60", "-pix_fmt", "yuv420p",
      "-c:a", "aac", "-b:a", "64k", "-f", "flv", url,
    ]);
    const [session] = await sessionStarted;
    const [ended] = (await once(session, "ended", { signal: AbortSignal.timeout(60_000) })) as [{ reason: string; durationS: number }];
    expect(ended.reason).toBe("publisher-left");

    const text = async (key: string) => new TextDecoder().decode((await fx.store.get(key))!.body);
    const vodMasterText = await text(session.vodKey);
    const vodMaster = parsePlaylist(vodMasterText);
    expect(vodMaster.playlists.map((p: { uri: string; attributes: { RESOLUTION: unknown } }) => [p.uri, p.attributes.RESOLUTION])).toEqual([
      ["360p/vod.m3u8", { width: 360, height: 640 }],
      ["240p/vod.m3u8", { width: 240, height: 426 }],
    ]);
    expect(vodMasterText).toMatch(/#EXT-X-MEDIA:TYPE=AUDIO,.*CHANNELS="1"/);

    for (const rung of ["360p", "240p"]) {
      const vod = parsePlaylist(await text(`${session.keyBase}/${rung}/vod.m3u8`));
      const d = vod.segments.map((s: { duration: number }) => s.duration);
      expect(d.at(-1), `${rung} durations ${d.join(", ")}`).toBeGreaterThan(0.1);
    }
    // the stored audio really is mono
    const audioVod = parsePlaylist(await text(`${session.keyBase}/audio/vod.m3u8`));
    const first = audioVod.segments[0] as { uri: string; map: { uri: string } };
    const body = async (uri: string) => (await fx.store.get(`${session.keyBase}/audio/${uri}`))!.body;
    const streams = await probeJoined(join(fx.storeDir, ".."), await body(first.map.uri), await body(first.uri));
    expect(streams.map((s) => [s.codec_type, s.channels])).toEqual([["audio", 1]]);
  });
});
