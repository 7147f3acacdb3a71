// The HLS publisher without RTMP, a live session or a media node: FFmpeg encodes a generated file (as a VOD job
// would) and the publisher stores what it writes through the real uploader into an fs store. Two runs into the
// same playlists (the second after a discontinuity), then the VOD playlists. Checks the publishing order from
// the storage side: every playlist version is stored only after every segment it lists, the master only after
// every playlist it lists.

import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../media-node/src/config.ts";
import { HlsPublisher, type HlsPublisherEvents } from "../../media-node/src/hls/publisher.ts";
import { createLogger } from "../../media-node/src/log.ts";
import { FsObjectStore, ReliableUploader } from "../../media-node/src/storage/index.ts";
import { buildLiveArgs, FFMPEG_MASTER, type FfmpegPlan, variantsOf } from "../../media-node/src/transcode/args.ts";
import { FfmpegJob } from "../../media-node/src/transcode/ffmpeg.ts";
import { selectLadder } from "../../media-node/src/transcode/ladder.ts";
import { parsePlaylist } from "../helpers/hls.ts";
import { probeFmp4Segment } from "../helpers/ffmpeg.ts";
import { run } from "../helpers/process.ts";

const SOURCE_S = 6;

describe("HLS publisher driven by a file encode (no RTMP)", () => {
  let root: string;
  let source: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "pulsecast-hls-"));
    source = join(root, "source.mp4");
    const made = await run("ffmpeg", ["-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=426x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", String(SOURCE_S), "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-y", source]);
    if (made.code !== 0) throw new Error(`making the source failed: ${made.stderr}`);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("stores segments in order, each playlist after its segments, the master after its playlists, then the VOD", async () => {
    const config = loadConfig({ PUBLISH_TOKEN_SECRET: "x".repeat(32), MEDIA_LADDER: "240p" });
    const ladder = selectLadder({ video: { width: 426, height: 240, fps: 30 }, audio: { channels: 2, sampleRate: 48_000 } }, { rungs: config.ladder, passthrough: config.passthrough, separateAudio: config.separateAudio });
    const variants = variantsOf(ladder);
    const store = new FsObjectStore({ dir: join(root, "store"), publicBaseUrl: "http://127.0.0.1/media" });
    const uploader = new ReliableUploader(store, { retryBaseMs: 10, retryMaxMs: 80 });

    // What storage holds, in the order it came to hold it; and every ordering rule broken on the way.
    const stored = new Set<string>();
    const violations: string[] = [];
    const keyBase = "vod/job-1";
    const bodyUpload = uploader.uploadBody.bind(uploader);
    uploader.uploadBody = async (key, body, meta) => {
      await bodyUpload(key, body, meta);
      const text = typeof body === "string" ? body : new TextDecoder().decode(body);
      const folder = key.slice(0, key.lastIndexOf("/"));
      for (const uri of text.split("\n").filter((l) => l && !l.startsWith("#"))) {
        if (!stored.has(`${folder}/${uri}`)) violations.push(`${key} listed ${uri} before it was stored`);
      }
      for (const map of text.matchAll(/#EXT-X-MAP:URI="([^"]+)"/g)) if (!stored.has(`${folder}/${map[1]}`)) violations.push(`${key} listed ${map[1]} before it was stored`);
      for (const media of text.matchAll(/#EXT-X-MEDIA:.*URI="([^"]+)"/g)) if (!stored.has(`${folder}/${media[1]}`)) violations.push(`${key} listed ${media[1]} before it was stored`);
      stored.add(key);
    };
    const fileUpload = uploader.upload.bind(uploader);
    uploader.upload = async (key, file, meta) => {
      await fileUpload(key, file, meta);
      stored.add(key);
    };

    const publisher = new HlsPublisher({ uploader, keyBase, variants, segmentS: 1, liveWindow: 6, sourceMaster: FFMPEG_MASTER, log: createLogger({ level: "error" }) });
    const segments: HlsPublisherEvents["segment"][0][] = [];
    const ready: HlsPublisherEvents["ready"][0][] = [];
    publisher.on("segment", (s) => segments.push(s));
    publisher.on("ready", (r) => ready.push(r));

    /** One encode of the source into run `epoch`'s folder, published as it goes. */
    async function encode(epoch: number, realtime: boolean): Promise<{ segmentsBeforeExit: number }> {
      const dir = join(root, "work", `e${epoch}`);
      const plan: FfmpegPlan = buildLiveArgs({ input: source, outDir: dir, ladder, segmentS: 1, preset: "ultrafast" });
      if (realtime) plan.inputArgs.push("-re");
      const job = new FfmpegJob(plan);
      const runInfo = { epoch, dir };
      await publisher.begin(runInfo);
      job.on("opened", ({ path }) => publisher.written(runInfo, path));
      const exit = new Promise<{ code: number | null; stderrTail: string }>((resolve) => job.once("exit", resolve));
      job.run();
      const { code, stderrTail } = await exit;
      expect(code, stderrTail).toBe(0);
      const segmentsBeforeExit = segments.length;
      await publisher.end(runInfo);
      return { segmentsBeforeExit };
    }

    // At realtime the segments are published while FFmpeg is still encoding, on its own cue.
    const first = await encode(0, true);
    expect(first.segmentsBeforeExit).toBeGreaterThan(0);
    // A second run continues the same playlists (as fast as FFmpeg goes: whatever is left is taken at its end).
    await encode(1, false);
    const result = await publisher.finish({ vod: true });

    expect(violations).toEqual([]);
    expect(ready).toHaveLength(1);
    expect(ready[0]!.variants.map((v) => v.uri)).toEqual(["240p/index.m3u8"]);
    expect(ready[0]!.audio.map((a) => a.uri)).toEqual(["audio/index.m3u8"]);
    expect(result.vodKey).toBe(`${keyBase}/vod.m3u8`);
    expect(result.durationS).toBeGreaterThan(2 * SOURCE_S - 1);
    expect(result.durationS).toBeLessThan(2 * SOURCE_S + 1);

    for (const name of ["240p", "audio"]) {
      // every segment of both runs, in encoder order, one discontinuity where the second run begins
      const mine = segments.filter((s) => s.variant === name);
      const order = mine.map((s) => [s.epoch, s.index]);
      const expected = [0, 1].flatMap((epoch) => mine.filter((s) => s.epoch === epoch).map((_, i) => [epoch, i]));
      expect(order).toEqual(expected);
      expect(mine.filter((s) => s.discontinuity).map((s) => [s.epoch, s.index])).toEqual([[1, 0]]);
      expect(mine.filter((s) => s.epoch === 0).length).toBeGreaterThanOrEqual(SOURCE_S - 1);

      const live = parsePlaylist(new TextDecoder().decode((await store.get(`${keyBase}/${name}/index.m3u8`))!.body));
      expect(live.endList).toBe(true);
      const vod = parsePlaylist(new TextDecoder().decode((await store.get(`${keyBase}/${name}/vod.m3u8`))!.body));
      expect(vod.playlistType).toBe("VOD");
      expect(vod.segments.map((s: { uri: string }) => s.uri)).toEqual(mine.map((s) => `e${s.epoch}-${s.index}.m4s`));
      expect(vod.segments.map((s: { discontinuity?: boolean }) => Boolean(s.discontinuity))).toEqual(mine.map((s) => s.discontinuity));
    }
    const vodMaster = parsePlaylist(new TextDecoder().decode((await store.get(`${keyBase}/vod.m3u8`))!.body));
    expect(vodMaster.playlists.map((p: { uri: string }) => p.uri)).toEqual(["240p/vod.m3u8"]);
    // the segments are real: the second run's first video segment decodes and starts with a keyframe
    const e1 = parsePlaylist(new TextDecoder().decode((await store.get(`${keyBase}/240p/vod.m3u8`))!.body)).segments.find((s: { uri: string }) => s.uri === "e1-0.m4s") as { uri: string; map: { uri: string } };
    const probed = await probeFmp4Segment(join(root, "store", keyBase, "240p", e1.map.uri), join(root, "store", keyBase, "240p", e1.uri));
    expect(probed.video[0]?.key).toBe(true);
    expect(uploader.stats().pending).toBe(0);
    await uploader.close();
  });

  it("depends on nothing of RTMP, the ingest, live sessions or FFmpeg", async () => {
    const text = await readFile(new URL("../../media-node/src/hls/publisher.ts", import.meta.url), "utf8");
    const imports = [...text.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]);
    expect(imports.length).toBeGreaterThan(0);
    for (const from of imports) expect(from, from).not.toMatch(/ingest|live\/|rtmp|ffmpeg|transcoder|node-media-server/);
  });
});
