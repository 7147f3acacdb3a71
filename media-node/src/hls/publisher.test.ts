// HlsPublisher against hand-written encoder output in a temp folder and an uploader that can be told to fail:
// ordering, the encoder's cue, a lost segment, and the inputs it refuses or ignores. (With real FFmpeg and real
// storage: test/media/hls-publisher.ffmpeg.test.ts.)

import { access, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../log.ts";
import type { Uploader } from "../storage/types.ts";
import type { Variant } from "../transcode/args.ts";
import { parsePlaylist } from "../../../test/helpers/hls.ts";
import { HlsPublisher, type HlsPublisherEvents } from "./publisher.ts";

const VIDEO: Variant = { name: "240p", video: { name: "240p", mode: "encode", width: 426, height: 240, fps: 30, kbps: 400, maxKbps: 440, bufKbps: 800, level: "3.0" }, audio: { kbps: 64, channels: 2, sampleRate: 48_000 }, audioGroup: undefined, rendition: false };

const quiet = createLogger({ level: "error", sink: () => {} });

/** An uploader that records what was stored, in order; keys in `failing` are refused. */
function recordingUploader(failing = new Set<string>()) {
  const log: string[] = [];
  const uploader = {
    upload: async (key: string) => {
      if (failing.has(key)) throw new Error(`refused ${key}`);
      log.push(key);
    },
    uploadBody: async (key: string, body: string) => void log.push(`${key}\n${body}`),
    stats: () => ({ pending: 0 }),
  } as unknown as Uploader;
  return { uploader, log };
}

/** An uploader that keeps every stored object (bodies as bytes; files read at upload, like the real one). */
function storingUploader() {
  const objects = new Map<string, Buffer>();
  const order: string[] = [];
  const uploader = {
    upload: async (key: string, path: string) => {
      const { readFile } = await import("node:fs/promises");
      objects.set(key, await readFile(path));
      order.push(key);
    },
    uploadBody: async (key: string, body: string | Uint8Array) => {
      objects.set(key, Buffer.from(body));
      order.push(key);
    },
    stats: () => ({ pending: 0 }),
  } as unknown as Uploader;
  const text = (key: string) => objects.get(key)?.toString("utf8");
  return { uploader, objects, order, text };
}

/** FFmpeg's playlist listing segments of the given durations, and those segment files (each its own bytes). */
async function encoderOutput(variantDir: string, durations: number[]): Promise<void> {
  await mkdir(variantDir, { recursive: true });
  const lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:1", "#EXT-X-MEDIA-SEQUENCE:0", '#EXT-X-MAP:URI="init_0.mp4"'];
  await writeFile(join(variantDir, "init_0.mp4"), "init");
  for (const [i, d] of durations.entries()) {
    lines.push(`#EXTINF:${d.toFixed(6)},`, `seg_${i}.m4s`);
    await writeFile(join(variantDir, `seg_${i}.m4s`), `fragment-${i};`);
  }
  await writeFile(join(variantDir, "index.m3u8"), lines.join("\n") + "\n");
}

const AUDIO: Variant = { name: "audio", video: undefined, audio: { kbps: 128, channels: 2, sampleRate: 48_000 }, audioGroup: undefined, rendition: true };
const V360: Variant = { name: "360p", video: { name: "360p", mode: "encode", width: 640, height: 360, fps: 30, kbps: 800, maxKbps: 880, bufKbps: 1200, level: "3.0" }, audio: undefined, audioGroup: AUDIO.audio, rendition: false };
const V240: Variant = { ...VIDEO, audio: undefined, audioGroup: AUDIO.audio };

function ffmpegPlaylist(segments: number, first = 0): string {
  const lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:1", `#EXT-X-MEDIA-SEQUENCE:${first}`, '#EXT-X-MAP:URI="init_0.mp4"'];
  for (let i = first; i < first + segments; i++) lines.push("#EXTINF:1.000000,", `seg_${i}.m4s`);
  return lines.join("\n") + "\n";
}

describe("HlsPublisher", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "pulsecast-pub-"));
    await mkdir(join(dir, "240p"), { recursive: true });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses a ladder without variants", () => {
    expect(() => new HlsPublisher({ uploader: recordingUploader().uploader, keyBase: "k", variants: [], segmentS: 1, liveWindow: 6, log: quiet })).toThrow(/no variants/);
  });

  it("reads the encoder's playlist on its cue, stores segments before the playlist listing them, and the master last", async () => {
    const { uploader, log } = recordingUploader();
    const pub = new HlsPublisher({ uploader, keyBase: "k", variants: [VIDEO], segmentS: 1, liveWindow: 6, log: quiet });
    const segments: HlsPublisherEvents["segment"][0][] = [];
    pub.on("segment", (s) => segments.push(s));
    const ready = new Promise((r) => pub.once("ready", r));
    const run = { epoch: 0, dir };
    await pub.begin(run);
    await writeFile(join(dir, "240p", "index.m3u8"), ffmpegPlaylist(2));
    // Cues that are not a variant's playlist are ignored; the playlist's cue is not.
    pub.written(run, join(dir, "240p", "seg_2.m4s"));
    pub.written(run, join(dir, "ffmpeg-master.m3u8"));
    pub.written({ epoch: 7, dir }, join(dir, "240p", "index.m3u8.tmp"));
    expect(log).toEqual([]);
    pub.written(run, join(dir, "240p", "index.m3u8.tmp"));
    await ready; // the cue alone got the segments read: nothing else has asked yet
    await pub.end(run);
    expect((await pub.finish({ vod: false })).segments).toBe(2);
    expect(segments.map((s) => [s.epoch, s.index, s.discontinuity])).toEqual([
      [0, 0, false],
      [0, 1, false],
    ]);
    const keys = log.map((l) => l.split("\n")[0]);
    expect(keys.indexOf("k/240p/e0-0.m4s")).toBeLessThan(keys.indexOf("k/240p/index.m3u8"));
    expect(keys.lastIndexOf("k/240p/e0-1.m4s")).toBeLessThan(keys.lastIndexOf("k/240p/index.m3u8"));
    expect(keys.indexOf("k/master.m3u8")).toBeGreaterThan(keys.indexOf("k/240p/index.m3u8"));
  });

  it("skips a segment storage refused and marks the next one discontinuous; a second run starts after a discontinuity", async () => {
    const { uploader, log } = recordingUploader(new Set(["k/240p/e0-1.m4s"]));
    const pub = new HlsPublisher({ uploader, keyBase: "k", variants: [VIDEO], segmentS: 1, liveWindow: 6, log: quiet });
    const failed: string[] = [];
    pub.on("failed", ({ kind }) => failed.push(kind));
    const run0 = { epoch: 0, dir };
    await pub.begin(run0);
    await writeFile(join(dir, "240p", "index.m3u8"), ffmpegPlaylist(3));
    await pub.end(run0); // the end reads whatever the encoder listed, cue or not
    const dir1 = join(dir, "e1");
    await mkdir(join(dir1, "240p"), { recursive: true });
    await writeFile(join(dir1, "240p", "index.m3u8"), ffmpegPlaylist(1));
    const run1 = { epoch: 1, dir: dir1 };
    await pub.begin(run1);
    await pub.end(run1);
    const result = await pub.finish({ vod: true });
    expect(failed).toEqual(["segment"]);
    expect(result).toMatchObject({ segments: 3, vodKey: "k/vod.m3u8" });
    const vod = log.find((l) => l.startsWith("k/240p/vod.m3u8\n"))!;
    expect(vod).not.toContain("e0-1.m4s");
    // e0-2 follows a gap, e1-0 a new run: both after a DISCONTINUITY
    expect(vod.split("\n").filter((l) => l === "#EXT-X-DISCONTINUITY" || l.endsWith(".m4s"))).toEqual(["e0-0.m4s", "#EXT-X-DISCONTINUITY", "e0-2.m4s", "#EXT-X-DISCONTINUITY", "e1-0.m4s"]);
  });

  it("merges a broadcast's last segment shorter than 0.1 s (one AAC frame) into the one before it in the VOD", async () => {
    const { uploader, objects, text } = storingUploader();
    const pub = new HlsPublisher({ uploader, keyBase: "k", variants: [V240, AUDIO], segmentS: 1, liveWindow: 6, log: quiet });
    const run = { epoch: 0, dir };
    await encoderOutput(join(dir, "240p"), [1, 1, 0.5]);
    await encoderOutput(join(dir, "audio"), [1, 1, 0.021]);
    await pub.begin(run);
    await pub.end(run);
    await pub.finish({ vod: true });
    const audio = parsePlaylist(text("k/audio/vod.m3u8")!);
    expect(audio.segments.map((x: { uri: string; duration: number }) => [x.uri, x.duration])).toEqual([
      ["e0-0.m4s", 1],
      ["e0-1-2.m4s", 1.021],
    ]);
    // the merged object is the two fragments one after the other, stored before the VOD playlist
    expect(objects.get("k/audio/e0-1-2.m4s")?.toString()).toBe("fragment-1;fragment-2;");
    // a last segment of 0.5 s is a segment of its own; the live playlist keeps what viewers were served
    expect(parsePlaylist(text("k/240p/vod.m3u8")!).segments.map((x: { uri: string }) => x.uri)).toEqual(["e0-0.m4s", "e0-1.m4s", "e0-2.m4s"]);
    expect(parsePlaylist(text("k/audio/index.m3u8")!).segments.map((x: { uri: string }) => x.uri)).toEqual(["e0-0.m4s", "e0-1.m4s", "e0-2.m4s"]);
    // the kept local files are gone once the broadcast is finished
    await expect(access(join(dir, "audio", "seg_2.m4s"))).rejects.toThrow();
  });

  it("does not merge a tiny segment that starts a new run, nor when it is the only one", async () => {
    const { uploader, text } = storingUploader();
    const pub = new HlsPublisher({ uploader, keyBase: "k", variants: [AUDIO], segmentS: 1, liveWindow: 6, log: quiet });
    await encoderOutput(join(dir, "audio"), [1]);
    await pub.begin({ epoch: 0, dir });
    await pub.end({ epoch: 0, dir });
    const dir1 = join(dir, "e1");
    await encoderOutput(join(dir1, "audio"), [0.02]);
    await pub.begin({ epoch: 1, dir: dir1 });
    await pub.end({ epoch: 1, dir: dir1 });
    await pub.finish({ vod: true });
    expect(parsePlaylist(text("k/audio/vod.m3u8")!).segments.map((x: { uri: string }) => x.uri)).toEqual(["e0-0.m4s", "e1-0.m4s"]);
  });

  it("stamps segments with the run's start plus the media time before them (EXT-X-PROGRAM-DATE-TIME)", async () => {
    const { uploader, text } = storingUploader();
    const pub = new HlsPublisher({ uploader, keyBase: "k", variants: [AUDIO], segmentS: 1, liveWindow: 6, log: quiet });
    const t0 = Date.UTC(2026, 0, 1, 12, 0, 0);
    await encoderOutput(join(dir, "audio"), [1, 0.98, 1]);
    await pub.begin({ epoch: 0, dir, startedAtMs: t0 });
    await pub.end({ epoch: 0, dir });
    await pub.finish({ vod: false });
    const live = parsePlaylist(text("k/audio/index.m3u8")!);
    expect(live.segments.map((x: { programDateTime: number }) => x.programDateTime - t0)).toEqual([0, 1000, 1980]);
  });

  it("sheds a variant: its playlist ends, the next run and every master leave it out, the VOD lists the kept ones", async () => {
    const { uploader, text } = storingUploader();
    const pub = new HlsPublisher({ uploader, keyBase: "k", variants: [V360, V240, AUDIO], segmentS: 1, liveWindow: 6, log: quiet });
    const ready = new Promise((r) => pub.once("ready", r));
    await Promise.all(["360p", "240p", "audio"].map((v) => encoderOutput(join(dir, v), [1, 1])));
    await pub.begin({ epoch: 0, dir });
    await pub.end({ epoch: 0, dir });
    await ready;
    expect(parsePlaylist(text("k/master.m3u8")!).playlists.map((p: { uri: string }) => p.uri)).toEqual(["360p/index.m3u8", "240p/index.m3u8"]);
    const entries = await pub.drop("360p");
    expect(entries.variants.map((v) => v.name)).toEqual(["240p"]);
    expect(parsePlaylist(text("k/master.m3u8")!).playlists.map((p: { uri: string }) => p.uri)).toEqual(["240p/index.m3u8"]);
    expect(text("k/360p/index.m3u8")).toContain("#EXT-X-ENDLIST");
    expect(pub.activeVariants.map((v) => v.name)).toEqual(["240p", "audio"]);
    // the next run writes only the kept variants; a folder for the shed one is not read
    const dir1 = join(dir, "e1");
    await Promise.all(["240p", "audio"].map((v) => encoderOutput(join(dir1, v), [1])));
    await pub.begin({ epoch: 1, dir: dir1 });
    await pub.end({ epoch: 1, dir: dir1 });
    const result = await pub.finish({ vod: true });
    expect(result).toMatchObject({ segments: 3, durationS: 3 });
    expect(parsePlaylist(text("k/vod.m3u8")!).playlists.map((p: { uri: string }) => p.uri)).toEqual(["240p/vod.m3u8"]);
    expect(text("k/360p/vod.m3u8")).toBeUndefined();
    expect(parsePlaylist(text("k/240p/vod.m3u8")!).segments.map((x: { uri: string }) => x.uri)).toEqual(["e0-0.m4s", "e0-1.m4s", "e1-0.m4s"]);
    // the last video variant is never shed
    await expect(pub.drop("240p")).rejects.toThrow(/last variant/);
  });

  it("lists an older run's last segments before a newer run's when the runs overlap (a hand-over)", async () => {
    const { uploader, text } = storingUploader();
    const pub = new HlsPublisher({ uploader, keyBase: "k", variants: [AUDIO], segmentS: 1, liveWindow: 10, log: quiet });
    const run0 = { epoch: 0, dir };
    await encoderOutput(join(dir, "audio"), [1]);
    await pub.begin(run0);
    pub.written(run0, join(dir, "audio", "index.m3u8"));
    // run 1 starts while run 0 still encodes what it received; run 1's segments come first
    const dir1 = join(dir, "e1");
    const run1 = { epoch: 1, dir: dir1 };
    await pub.begin(run1);
    await encoderOutput(join(dir1, "audio"), [1, 1]);
    pub.written(run1, join(dir1, "audio", "index.m3u8"));
    await new Promise((r) => setTimeout(r, 50)); // (a run's segments wait for the earlier run whatever the pace)
    expect(parsePlaylist(text("k/audio/index.m3u8")!).segments.map((x: { uri: string }) => x.uri)).toEqual(["e0-0.m4s"]);
    await encoderOutput(join(dir, "audio"), [1, 1, 1]);
    await pub.end(run0);
    await pub.end(run1);
    await pub.finish({ vod: true });
    const vod = parsePlaylist(text("k/audio/vod.m3u8")!);
    expect(vod.segments.map((x: { uri: string }) => x.uri)).toEqual(["e0-0.m4s", "e0-1.m4s", "e0-2.m4s", "e1-0.m4s", "e1-1.m4s"]);
    expect(vod.segments.map((x: { discontinuity?: boolean }) => Boolean(x.discontinuity))).toEqual([false, false, false, true, false]);
  });
});
