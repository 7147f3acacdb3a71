// Processing one upload: source from storage -> probe -> one FFmpeg pass (HLS ladder, storyboard sprite, poster,
// thumbnails) with every segment stored as it is finished -> the images and the storyboard VTT/JSON -> a marker
// saying everything is stored. A video deleted meanwhile ends with nothing of it stored (see processUpload). The caller (worker.ts) turns the hooks into events and the outcome into an ack.
//
// Object keys depend only on the video id (`<prefix>/<videoId>/...`, segments `e0-<n>.m4s`), so a job redone on
// another node after a crash overwrites the same objects instead of leaving a second copy under other names.
// The marker (`ready.json`, stored last) makes a redelivered job that had in fact finished cheap: its result
// is read back and announced again (with the same event ids) without encoding anything.

import { randomBytes } from "node:crypto";
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Rendition } from "../../../shared/events/common.ts";
import type { MediaStage } from "../../../shared/events/media.ts";
import { HlsPublisher } from "../hls/publisher.ts";
import type { MasterEntries } from "../hls/playlists.ts";
import { CACHE } from "../hls/playlists.ts";
import type { Logger } from "../log.ts";
import type { ObjectStore, Uploader } from "../storage/types.ts";
import { variantsOf } from "../transcode/args.ts";
import { FfmpegJob } from "../transcode/ffmpeg.ts";
import { type LadderSettings, selectLadder } from "../transcode/ladder.ts";
import { buildVodArgs, POSTER_FILE, POSTER_SMALL_FILE } from "./args.ts";
import type { VodJob } from "./job.ts";
import { ladderSource, probeFile, refusalOf, type SourceLimits, UnreadableMediaError, vodFrameRate, type VodSource } from "./probe.ts";
import { openSource, type SourceLocation, SourceMissingError, type SourceReader, sourceExists } from "./source.ts";
import { SourceServer } from "./source-server.ts";
import { sheetName, storyboardGeometry, storyboardJson, storyboardVtt } from "./storyboard.ts";

export interface VodPipelineSettings {
  workDir: string;
  ffmpegPath: string;
  ffprobePath: string;
  keyPrefix: string;
  segmentS: number;
  preset: string;
  /** libx264 options on top of the preset (x264-params syntax) */
  x264Params?: string | undefined;
  ladder: LadderSettings;
  limits: SourceLimits;
  /** where sources are read (default: the store) */
  source?: SourceLocation;
  /** how often a running job checks that its video was not deleted (default DELETE_CHECK_MS; tests go faster) */
  deleteCheckMs?: number;
}

export interface VodPipelineDeps {
  store: ObjectStore;
  uploader: Uploader;
  log: Logger;
  settings: VodPipelineSettings;
}

export interface VodKeys {
  master: string;
  poster?: string;
  storyboard?: string;
  storyboardJson?: string;
  thumbnails?: string[];
}

export interface VodResult {
  videoId: string;
  durationS: number;
  renditions: Rendition[];
  keys: VodKeys;
}

export interface VodHooks {
  /** a stage began or moved on (percent of that stage) */
  progress(stage: MediaStage, percent: number): void;
  /** every rendition has its first segments stored and the master lists them: the video plays from the start */
  playable(info: { masterKey: string; renditions: Rendition[] }): Promise<void>;
}

/** The job cannot complete. `permanent`: the upload itself is the problem (retrying cannot help). */
export class VodJobError extends Error {
  override name = "VodJobError";
  readonly stage: MediaStage;
  readonly permanent: boolean;
  constructor(stage: MediaStage, message: string, permanent: boolean) {
    super(message);
    this.stage = stage;
    this.permanent = permanent;
  }
}

export const READY_MARKER = "ready.json";

export function vodKeyBase(prefix: string, videoId: string): string {
  return `${prefix}/${videoId}`;
}

function renditionsOf(entries: MasterEntries): Rendition[] {
  return entries.variants.map((v) => ({ name: v.name, bandwidth: v.bandwidth, ...(v.width ? { width: v.width } : {}), ...(v.height ? { height: v.height } : {}), codecs: v.codecs }));
}

const tail = (text: string, lines = 4) =>
  text
    .split("\n")
    .filter((l) => /error|invalid|fatal/i.test(l))
    .slice(-lines)
    .join(" | ")
    .slice(0, 600) || text.split("\n").slice(-lines).join(" | ").slice(0, 600);

/** The video was deleted while its job ran: what the job had stored is removed again, and nothing is announced. */
export class VideoDeletedError extends Error {
  override name = "VideoDeletedError";
}

/** How often a running job checks that its video still exists (by its source, which a delete removes first). */
export const DELETE_CHECK_MS = 5000;

/** Removes every object under `<keyBase>/`; resolves with how many there were. */
async function sweep(store: ObjectStore, keyBase: string): Promise<number> {
  const keys = await store.list(`${keyBase}/`);
  for (let i = 0; i < keys.length; i += 16) await Promise.all(keys.slice(i, i + 16).map((k) => store.delete(k)));
  return keys.length;
}

/** `signal` abandons the job (node stopping): FFmpeg is killed and the promise rejects. */
export async function processUpload(job: VodJob, deps: VodPipelineDeps, hooks: VodHooks, signal?: AbortSignal): Promise<VodResult> {
  const { store, uploader, settings } = deps;
  const log = deps.log.child({ videoId: job.videoId });
  const keyBase = vodKeyBase(settings.keyPrefix, job.videoId);
  const markerKey = `${keyBase}/${READY_MARKER}`;
  // A delete at the edge removes the source first, then everything under the video's folder. The job checks the
  // source while it encodes (and stops), and once more after its last write: if the source was still there then,
  // the edge's sweep of the folder comes after every object the job stored; if not, the job sweeps the folder itself.
  const stillWanted = async (stage: MediaStage): Promise<boolean> => {
    try {
      return await sourceExists(store, job.sourceKey, settings.source);
    } catch (error) {
      throw new VodJobError(stage, `could not check that the video still exists: ${(error as Error).message}`, false);
    }
  };
  const deleted = async (): Promise<never> => {
    const removed = await sweep(store, keyBase);
    log.info("video deleted while it was processed; its outputs are removed", { removed });
    throw new VideoDeletedError(`video ${job.videoId} was deleted`);
  };

  const done = await store.get(markerKey).catch(() => null);
  if (done) {
    if (!(await stillWanted("upload"))) return deleted();
    log.info("already processed; announcing the stored result again");
    return JSON.parse(new TextDecoder().decode(done.body)) as VodResult;
  }

  const dir = join(settings.workDir, "vod", `${job.videoId}-${randomBytes(4).toString("hex")}`);
  await mkdir(dir, { recursive: true });
  let server: SourceServer | undefined;
  try {
    // 1. the source: FFmpeg reads it through a local server while it downloads (source-server.ts), so the
    // encode starts after the first bytes and the index instead of after the whole file
    const t0 = performance.now();
    const ms = () => Math.round(performance.now() - t0);
    const timings: Record<string, number> = {};
    hooks.progress("download", 0);
    let reader: SourceReader;
    try {
      reader = await openSource(store, job.sourceKey, settings.source);
    } catch (error) {
      if (error instanceof SourceMissingError) {
        // Deleted before this attempt: an earlier one (a node lost mid-job) may have stored part of the outputs.
        await sweep(store, keyBase).catch((e: unknown) => log.warn("outputs of an earlier attempt not removed", { error: e }));
      }
      throw new VodJobError("download", (error as Error).message, error instanceof SourceMissingError);
    }
    server = reader.localPath ? undefined : await SourceServer.start(reader, join(dir, "source"));
    const input = reader.localPath ?? server!.url;
    void server?.downloaded.then(() => (timings.downloadedMs = ms()), () => undefined);
    /** a failure that was the source's reading, not the file's content: worth a retry */
    const readFailure = () => server?.failure && new VodJobError("download", `the source could not be read: ${server.failure.message}`, false);

    // 2. what it is
    hooks.progress("probe", 0);
    let source: VodSource;
    try {
      source = await probeFile(input, { ffprobePath: settings.ffprobePath });
    } catch (error) {
      throw readFailure() || new VodJobError("probe", (error as Error).message, error instanceof UnreadableMediaError);
    }
    timings.probedMs = ms();
    const refusal = refusalOf(source, settings.limits);
    if (refusal) throw new VodJobError("probe", refusal, true);
    log.info("source probed", { durationS: source.durationS, video: source.video, audio: source.audio });

    // 3. the ladder, the storyboard sprite, the poster and the thumbnails: one decode, one FFmpeg
    const ladder = selectLadder(ladderSource(source), settings.ladder);
    const variants = variantsOf(ladder);
    const picture = source.video ? { width: source.video.width, height: source.video.height } : undefined;
    const geometry = picture ? storyboardGeometry(source.durationS, picture) : undefined;
    const hlsDir = join(dir, "hls");
    const spriteDir = join(dir, "storyboard");
    const stillsDir = join(dir, "stills");
    await Promise.all([hlsDir, spriteDir, stillsDir].map((d) => mkdir(d, { recursive: true })));
    const plan = buildVodArgs({
      input,
      outDir: hlsDir,
      ladder,
      segmentS: settings.segmentS,
      preset: settings.preset,
      x264Params: settings.x264Params,
      fps: source.video ? vodFrameRate(source) : undefined,
      storyboard: geometry ? { dir: spriteDir, geometry } : undefined,
      stills: picture ? { dir: stillsDir, durationS: source.durationS, picture } : undefined,
    });

    const publisher = new HlsPublisher({ uploader, keyBase, variants, segmentS: settings.segmentS, liveWindow: 0, playlistKind: "event", log });
    let lost = 0;
    publisher.on("failed", ({ kind }) => void (kind === "segment" && lost++));
    let renditions: Rendition[] = [];
    let playable: Promise<void> | undefined;
    publisher.on("ready", (entries) => {
      renditions = renditionsOf(entries);
      timings.playableMs = ms();
      log.info("vod playable", { ...timings });
      playable = hooks.playable({ masterKey: publisher.masterKey, renditions });
    });

    const run = { epoch: 0, dir: hlsDir };
    await publisher.begin(run);
    hooks.progress("transcode", 0);
    if (signal?.aborted) throw new VodJobError("transcode", "abandoned: the node is stopping", false);
    const ffmpeg = new FfmpegJob(plan, { ffmpegPath: settings.ffmpegPath });
    const onAbort = () => void ffmpeg.kill();
    signal?.addEventListener("abort", onAbort, { once: true });
    let gone = false;
    let checking = false;
    const watch = setInterval(() => {
      if (checking || gone) return;
      checking = true;
      stillWanted("transcode")
        .then((wanted) => {
          if (wanted) return;
          gone = true;
          void ffmpeg.kill();
        })
        .catch((error: unknown) => log.warn("could not check that the video still exists; going on", { error }))
        .finally(() => (checking = false));
    }, settings.deleteCheckMs ?? DELETE_CHECK_MS);
    ffmpeg.on("opened", ({ path }) => publisher.written(run, path));
    ffmpeg.on("progress", (p) => {
      if (p.timeS !== undefined && source.durationS > 0) hooks.progress("transcode", Math.min(99, Math.max(0, (100 * p.timeS) / source.durationS)));
    });
    const exit = await new Promise<{ code: number | null; signal: string | null; stderrTail: string }>((r) => {
      ffmpeg.once("exit", r);
      ffmpeg.run();
    }).finally(() => clearInterval(watch));
    signal?.removeEventListener("abort", onAbort);
    await publisher.end(run);
    if (gone) {
      // Every segment FFmpeg finished is handed to upload by now: wait until they are stored, then remove them.
      await publisher.settled();
      await playable?.catch(() => undefined);
      return await deleted();
    }
    if (signal?.aborted) throw new VodJobError("transcode", "abandoned: the node is stopping", false);
    // A read cut short may look like a clean end of the file to FFmpeg: never publish what it made of it.
    const unread = readFailure();
    if (unread) throw unread;
    if (exit.code !== 0) throw new VodJobError("transcode", `ffmpeg exited with ${exit.code ?? exit.signal}: ${tail(exit.stderrTail)}`, false);
    const published = await publisher.finish({ vod: false });
    if (published.segments === 0) throw new VodJobError("transcode", `no playable media could be decoded from the file: ${tail(exit.stderrTail)}`, true);
    if (lost > 0) throw new VodJobError("upload", `${lost} segment(s) could not be stored`, false);
    await playable;
    hooks.progress("transcode", 100);
    timings.encodedMs = ms();

    // 4. poster, thumbnails, storyboard (written by the same pass)
    hooks.progress("thumbnails", 0);
    const keys: VodKeys = { master: publisher.masterKey };
    const uploads: Promise<void>[] = [];
    const store1 = (key: string, file: string) => uploads.push(uploader.upload(key, file, { cacheControl: CACHE.segment }));
    const stills = new Set(await readdir(stillsDir));
    if (stills.has(POSTER_FILE)) {
      store1((keys.poster = `${keyBase}/poster.jpg`), join(stillsDir, POSTER_FILE));
      if (stills.has(POSTER_SMALL_FILE)) store1(`${keyBase}/poster-sm.jpg`, join(stillsDir, POSTER_SMALL_FILE));
    } else if (picture) log.warn("ffmpeg wrote no poster");
    const thumbs = [...stills].map((f) => Number(/^thumb-(\d+)\.jpg$/.exec(f)?.[1])).filter((n) => n > 0).sort((a, b) => a - b);
    if (thumbs.length) {
      keys.thumbnails = thumbs.map((n, i) => {
        const key = `${keyBase}/thumbnails/${i + 1}.jpg`;
        store1(key, join(stillsDir, `thumb-${n}.jpg`));
        return key;
      });
    }
    if (geometry) {
      const sheets = (await readdir(spriteDir)).filter((f) => /^sprite_\d{3}\.jpg$/.test(f)).sort();
      if (sheets.length > 0) {
        const perSheet = geometry.cols * geometry.rows;
        // Cues only for tiles FFmpeg actually wrote (a short read of the file can end the sprite early).
        const g = { ...geometry, sheets: sheets.length, tiles: Math.min(geometry.tiles, sheets.length * perSheet) };
        for (let i = 0; i < sheets.length; i++) store1(`${keyBase}/storyboard/${sheetName(i)}`, join(spriteDir, sheetName(i)));
        keys.storyboard = `${keyBase}/storyboard.vtt`;
        keys.storyboardJson = `${keyBase}/storyboard.json`;
        uploads.push(uploader.uploadBody(keys.storyboard, storyboardVtt(g, source.durationS, "storyboard/"), { cacheControl: CACHE.segment, contentType: "text/vtt" }));
        uploads.push(uploader.uploadBody(keys.storyboardJson, JSON.stringify(storyboardJson(g, source.durationS, "storyboard/")), { cacheControl: CACHE.segment, contentType: "application/json" }));
      } else log.warn("ffmpeg wrote no storyboard sheet");
    }
    hooks.progress("upload", 0);
    const stored = await Promise.allSettled(uploads);
    const failed = stored.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw new VodJobError("upload", `outputs could not be stored: ${(failed.reason as Error).message}`, false);

    // 5. the marker, last: its presence means every object above is stored
    const result: VodResult = { videoId: job.videoId, durationS: published.durationS || source.durationS, renditions, keys };
    await uploader.uploadBody(markerKey, JSON.stringify(result), { contentType: "application/json" });
    // Every write of this job is done: a delete that came before this check is swept here, one after it at the edge.
    if (!(await stillWanted("upload"))) return await deleted();
    hooks.progress("upload", 100);
    log.info("vod stored", { ...timings, storedMs: ms(), segments: published.segments });
    return result;
  } finally {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  }
}
