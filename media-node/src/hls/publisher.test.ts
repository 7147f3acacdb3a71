// HlsPublisher against hand-written encoder output in a temp folder and an uploader that can be told to fail:
// ordering, the encoder's cue, a lost segment, and the inputs it refuses or ignores. (With real FFmpeg and real
// storage: test/media/hls-publisher.ffmpeg.test.ts.)

import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../log.ts";
import type { Uploader } from "../storage/types.ts";
import type { Variant } from "../transcode/args.ts";
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
});
