// Processing real uploads with real FFmpeg, read back from storage with independent tools (m3u8-parser for the
// playlists, ffprobe for segments and images): landscape, portrait with rotation metadata, audio only, odd size,
// variable frame rate, and the bad inputs (a cut-off file, a text file named .mp4) that must fail clearly.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MediaStage } from "../../shared/events/media.ts";
import { createLogger } from "../../media-node/src/log.ts";
import { FsObjectStore, ReliableUploader } from "../../media-node/src/storage/index.ts";
import type { VodJob } from "../../media-node/src/vod/job.ts";
import { processUpload, VideoDeletedError, type VodPipelineDeps, VodJobError, type VodResult } from "../../media-node/src/vod/pipeline.ts";
import { probeStreams } from "../helpers/ffmpeg.ts";
import { parsePlaylist } from "../helpers/hls.ts";
import { makeSource, type SourceKind } from "./sources.ts";

let root: string;
let store: FsObjectStore;
let uploader: ReliableUploader;
let deps: VodPipelineDeps;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "pulsecast-vod-"));
  store = new FsObjectStore({ dir: join(root, "store"), publicBaseUrl: "http://127.0.0.1:1/media" });
  uploader = new ReliableUploader(store, { retryBaseMs: 50 });
  deps = {
    store,
    uploader,
    log: createLogger({ level: "warn" }),
    settings: {
      workDir: join(root, "work"),
      ffmpegPath: "ffmpeg",
      ffprobePath: "ffprobe",
      keyPrefix: "vod",
      segmentS: 2,
      preset: "veryfast",
      ladder: { rungs: ["720p", "480p", "360p"], passthrough: false, separateAudio: true },
      limits: { maxDurationS: 600, maxLongSide: 4096 },
    },
  };
});

afterAll(async () => {
  await uploader.close();
  await rm(root, { recursive: true, force: true });
});

interface Run {
  result: VodResult;
  stages: MediaStage[];
  playableAt: number;
  /** how many segments each rendition playlist listed when playable was announced */
  playableSegments: number[];
}

async function upload(kind: SourceKind, videoId: string, seconds = 5): Promise<VodJob> {
  const file = await makeSource(kind, root, seconds);
  const sourceKey = `uploads/${videoId}/source`;
  await store.put(sourceKey, { file });
  return { eventId: `evt_${videoId}`, videoId, ownerId: "alice", roomId: undefined, sourceKey, size: undefined };
}

async function text(key: string): Promise<string> {
  const o = await store.get(key);
  if (!o) throw new Error(`${key} is not stored`);
  return new TextDecoder().decode(o.body);
}

async function processed(kind: SourceKind, videoId: string, seconds = 5): Promise<Run> {
  const job = await upload(kind, videoId, seconds);
  const stages: MediaStage[] = [];
  let playableAt = 0;
  const playableSegments: number[] = [];
  const result = await processUpload(job, deps, {
    progress: (stage) => void (stages.at(-1) !== stage && stages.push(stage)),
    playable: async ({ masterKey }) => {
      playableAt = Date.now();
      // What a player would find at this moment: the master and a first segment of every rendition.
      const master = parsePlaylist(await text(masterKey));
      const uris = [...master.playlists.map((p: { uri: string }) => p.uri), ...Object.values(master.mediaGroups.AUDIO?.aud ?? {}).map((a) => (a as { uri: string }).uri)];
      for (const uri of uris) playableSegments.push(parsePlaylist(await text(`vod/${videoId}/${uri}`)).segments.length);
    },
  });
  return { result, stages, playableAt, playableSegments };
}

/** A rendition's playlist, checked: EVENT from the start, ended, every segment stored; returns its duration. */
async function checkRendition(videoId: string, uri: string): Promise<{ durationS: number; firstSegment: { init: string; seg: string } }> {
  const m = parsePlaylist(await text(`vod/${videoId}/${uri}`));
  expect(m.playlistType).toBe("EVENT");
  expect(m.endList).toBe(true);
  expect(m.segments.length).toBeGreaterThan(0);
  const folder = `vod/${videoId}/${uri.split("/")[0]}`;
  for (const s of m.segments as { uri: string; map: { uri: string } }[]) {
    expect(await store.head(`${folder}/${s.uri}`)).not.toBeNull();
    expect(await store.head(`${folder}/${s.map.uri}`)).not.toBeNull();
  }
  const durationS = (m.segments as { duration: number }[]).reduce((t, s) => t + s.duration, 0);
  const first = m.segments[0] as { uri: string; map: { uri: string } };
  return { durationS, firstSegment: { init: store.pathOf(`${folder}/${first.map.uri}`), seg: store.pathOf(`${folder}/${first.uri}`) } };
}

/** ffprobe of init + first segment joined: what a player decodes first. */
async function firstPicture(seg: { init: string; seg: string }): Promise<{ width?: number; height?: number; codecs: string[] }> {
  const joined = join(root, `joined-${Math.random().toString(36).slice(2)}.mp4`);
  const { readFile } = await import("node:fs/promises");
  await writeFile(joined, Buffer.concat([await readFile(seg.init), await readFile(seg.seg)]));
  const streams = await probeStreams(joined);
  const v = streams.find((s) => s.codec_type === "video");
  return { width: v?.width, height: v?.height, codecs: streams.map((s) => s.codec_name) };
}

async function imageSize(key: string): Promise<{ width?: number; height?: number }> {
  const [s] = await probeStreams(store.pathOf(key));
  return { width: s?.width, height: s?.height };
}

describe("VOD processing with real FFmpeg", () => {
  it("landscape with audio: a ladder never upscaled, audio once, playable before the end, poster, thumbnails, storyboard", async () => {
    const started = Date.now();
    const run = await processed("landscape", "land1", 8);
    const { result } = run;
    const doneAt = Date.now();
    expect(result.renditions.map((r) => [r.name, r.width, r.height])).toEqual([
      ["480p", 854, 480],
      ["360p", 640, 360],
    ]);
    expect(run.stages).toEqual(["download", "probe", "transcode", "thumbnails", "upload"]);
    // Playable came while the ladder was still being encoded, with a first segment of each rendition stored.
    expect(run.playableAt).toBeGreaterThan(started);
    expect(run.playableAt).toBeLessThan(doneAt);
    expect(run.playableSegments.length).toBe(3);
    expect(Math.min(...run.playableSegments)).toBeGreaterThanOrEqual(1);

    const master = parsePlaylist(await text(result.keys.master));
    expect(master.playlists.map((p: { uri: string }) => p.uri).sort()).toEqual(["360p/index.m3u8", "480p/index.m3u8"]);
    const audio = Object.values(master.mediaGroups.AUDIO.aud) as { uri: string }[];
    expect(audio.map((a) => a.uri)).toEqual(["audio/index.m3u8"]);
    for (const uri of ["480p/index.m3u8", "360p/index.m3u8", "audio/index.m3u8"]) {
      const r = await checkRendition("land1", uri);
      expect(r.durationS).toBeGreaterThan(7.5);
      expect(r.durationS).toBeLessThan(8.5);
    }
    const top = await firstPicture((await checkRendition("land1", "480p/index.m3u8")).firstSegment);
    expect(top).toMatchObject({ width: 854, height: 480, codecs: ["h264"] });
    expect(result.durationS).toBeGreaterThan(7.5);

    expect(await imageSize(result.keys.poster!)).toEqual({ width: 854, height: 480 });
    expect(await imageSize("vod/land1/poster-sm.jpg")).toEqual({ width: 320, height: 180 });
    expect(result.keys.thumbnails).toHaveLength(3);
    for (const key of result.keys.thumbnails!) expect(await imageSize(key)).toEqual({ width: 640, height: 360 });

    // Storyboard: 8 s -> 1 s interval, 8 tiles of 160x90 on one 8x1 sheet; cues contiguous to the end.
    const vtt = await text(result.keys.storyboard!);
    const cues = [...vtt.matchAll(/^(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n(.+)$/gm)].map((m) => ({
      start: Number(m[2]) * 60 + Number(m[3]) + Number(m[4]) / 1000,
      end: Number(m[6]) * 60 + Number(m[7]) + Number(m[8]) / 1000,
      payload: m[9]!,
    }));
    expect(cues.length).toBe(8);
    expect(cues[0]!.start).toBe(0);
    for (let i = 1; i < cues.length; i++) expect(cues[i]!.start).toBe(cues[i - 1]!.end);
    expect(cues.at(-1)!.end).toBeCloseTo(result.durationS, 0);
    expect(cues[3]!.payload).toBe("storyboard/sprite_001.jpg#xywh=480,0,160,90");
    expect(await imageSize("vod/land1/storyboard/sprite_001.jpg")).toEqual({ width: 8 * 160, height: 90 });
    const json = JSON.parse(await text(result.keys.storyboardJson!)) as { tile_width: number; sheets: { url: string; tiles: unknown[] }[] };
    expect(json.tile_width).toBe(160);
    expect(json.sheets[0]!.tiles).toHaveLength(8);

    // The marker holds the result: a redelivered job announces it again without encoding anything.
    const stages: MediaStage[] = [];
    const replay = await processUpload({ eventId: "x", videoId: "land1", ownerId: "alice", roomId: undefined, sourceKey: "uploads/land1/source", size: undefined }, deps, {
      progress: (s) => void stages.push(s),
      playable: async () => undefined,
    });
    expect(replay).toEqual(result);
    expect(stages).toEqual([]);
  });

  it("the poster is a representative frame, not the black first frame of a fade-in", async () => {
    const { result } = await processed("fade-in", "fade1", 10);
    const luma = async (file: string, filter = "") => {
      const { run } = await import("../helpers/process.ts");
      const r = await run("ffprobe", ["-v", "error", "-f", "lavfi", "-i", `movie=${file}${filter},signalstats`, "-show_entries", "frame_tags=lavfi.signalstats.YAVG", "-of", "csv=p=0", "-read_intervals", "%+#1"]);
      return Number(r.stdout.trim().split("\n")[0]);
    };
    const firstFrame = await luma(join(root, "fade-in.mp4"));
    const poster = await luma(store.pathOf(result.keys.poster!));
    expect(firstFrame).toBeLessThan(20);
    expect(poster).toBeGreaterThan(firstFrame + 30);
  });

  it("a phone's portrait video (rotation metadata) is encoded upright", async () => {
    const { result } = await processed("portrait-rotated", "port1");
    expect(result.renditions.map((r) => [r.name, r.width, r.height])).toEqual([["360p", 360, 640]]);
    const pic = await firstPicture((await checkRendition("port1", "360p/index.m3u8")).firstSegment);
    expect(pic).toMatchObject({ width: 360, height: 640 });
    expect(await imageSize(result.keys.poster!)).toEqual({ width: 360, height: 640 });
    expect(await imageSize("vod/port1/storyboard/sprite_001.jpg")).toEqual({ width: 5 * 90, height: 160 });
  });

  it("an audio-only upload becomes audio-only HLS, without poster or storyboard", async () => {
    const { result } = await processed("audio-only", "aud1");
    expect(result.renditions).toEqual([expect.objectContaining({ name: "audio", codecs: "mp4a.40.2" })]);
    expect(result.keys).toEqual({ master: "vod/aud1/master.m3u8" });
    const r = await checkRendition("aud1", "audio/index.m3u8");
    expect(r.durationS).toBeGreaterThan(4.5);
    expect((await firstPicture(r.firstSegment)).codecs).toEqual(["aac"]);
  });

  it("an odd-sized picture is made even", async () => {
    const { result } = await processed("odd-size", "odd1");
    expect(result.renditions.map((r) => [r.width, r.height])).toEqual([[642, 360]]);
    const pic = await firstPicture((await checkRendition("odd1", `${result.renditions[0]!.name}/index.m3u8`)).firstSegment);
    expect(pic).toMatchObject({ width: 642, height: 360 });
  });

  it("a variable-frame-rate recording keeps its length", async () => {
    const { result } = await processed("vfr", "vfr1", 6);
    for (const r of result.renditions) {
      const { durationS } = await checkRendition("vfr1", `${r.name}/index.m3u8`);
      expect(durationS).toBeGreaterThan(5.3);
      expect(durationS).toBeLessThan(6.5);
    }
  });

  it.each([
    ["truncated", "trunc1"],
    ["text", "text1"],
  ] as const)("a %s file fails at the probe with a clear reason, for good, and stores nothing", async (kind, id) => {
    const job = await upload(kind, id);
    const error = await processUpload(job, deps, { progress: () => undefined, playable: async () => undefined }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VodJobError);
    expect(error).toMatchObject({ stage: "probe", permanent: true, message: expect.stringMatching(/not a readable audio or video file/) });
    expect(await store.list(`vod/${id}/`)).toEqual([]);
  });

  it("an upload that is not in storage fails at the download, for good", async () => {
    const error = await processUpload({ eventId: "e", videoId: "gone1", ownerId: "alice", roomId: undefined, sourceKey: "uploads/gone1/source", size: undefined }, deps, {
      progress: () => undefined,
      playable: async () => undefined,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ stage: "download", permanent: true, message: expect.stringMatching(/not in storage/) });
  });

  // Deleting a video at the edge removes its source first, then its folder. These delete the source the same way
  // at the moments that matter; the job must end with nothing of the video stored, whoever sweeps last.
  it("a video deleted while it is encoded: FFmpeg is stopped early and nothing of the video stays stored", async () => {
    const job = await upload("landscape", "del1", 20);
    const segments: string[] = [];
    const onStored = ({ key }: { key: string }) => void (key.startsWith("vod/del1/480p/e0-") && key.endsWith(".m4s") && segments.push(key));
    uploader.on("uploaded", onStored);
    let deletedAt = 0;
    const error = await processUpload(job, { ...deps, settings: { ...deps.settings, deleteCheckMs: 100 } }, {
      progress: () => undefined,
      playable: async () => {
        deletedAt = Date.now();
        await store.delete(job.sourceKey);
      },
    })
      .catch((e: unknown) => e)
      .finally(() => uploader.off("uploaded", onStored));
    expect(error).toBeInstanceOf(VideoDeletedError);
    expect(deletedAt).toBeGreaterThan(0);
    // 20 s in 2 s segments is 10 per rendition: the encode stopped before that.
    expect(segments.length).toBeGreaterThan(0);
    expect(segments.length).toBeLessThan(10);
    expect(await store.list("vod/del1/")).toEqual([]);
  });

  it("a video deleted after its last segment, before the job announced it: the job removes everything it stored", async () => {
    const job = await upload("landscape", "del2", 4);
    const stages: MediaStage[] = [];
    const error = await processUpload(job, deps, {
      progress: (stage) => {
        stages.push(stage);
        // The images and playlists are being stored now, the marker follows: the delete comes in between.
        if (stage === "upload") void store.delete(job.sourceKey);
      },
      playable: async () => undefined,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VideoDeletedError);
    expect(stages).toContain("upload");
    expect(await store.list("vod/del2/")).toEqual([]);
  });

  it("a finished job redelivered after its video was deleted removes what is left instead of announcing it", async () => {
    const { result } = await processed("landscape", "del3", 3);
    expect(await store.list("vod/del3/")).toContain("vod/del3/ready.json");
    // As if the edge's sweep had run before the last of these objects landed.
    await store.delete(result.keys.master);
    await store.delete("uploads/del3/source");
    const error = await processUpload({ eventId: "e", videoId: "del3", ownerId: "alice", roomId: undefined, sourceKey: "uploads/del3/source", size: undefined }, deps, {
      progress: () => undefined,
      playable: async () => undefined,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VideoDeletedError);
    expect(await store.list("vod/del3/")).toEqual([]);
  });
});
