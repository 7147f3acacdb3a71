// Processing one upload: source from storage -> probe -> one FFmpeg pass (HLS ladder + storyboard sprite) with
// every segment stored as it is finished -> poster and thumbnails -> storyboard VTT/JSON -> a marker saying
// everything is stored. The caller (worker.ts) turns the hooks into events and the outcome into an ack.
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
import { buildPosterArgs, buildThumbnailArgs, buildVodArgs, thumbnailTimes } from "./args.ts";
import type { VodJob } from "./job.ts";
import { ladderSource, probeFile, refusalOf, type SourceLimits, UnreadableMediaError, vodFrameRate, type VodSource } from "./probe.ts";
import { fetchSource, type SourceLocation, SourceMissingError } from "./source.ts";
import { sheetName, storyboardGeometry, storyboardJson, storyboardVtt } from "./storyboard.ts";

export interface VodPipelineSettings {
  workDir: string;
  ffmpegPath: string;
  ffprobePath: string;
  keyPrefix: string;
  segmentS: number;
  preset: string;
  ladder: LadderSettings;
  limits: SourceLimits;
  /** where sources are read (default: the store) */
  source?: SourceLocation;
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

/** Runs one FFmpeg plan to its end; rejects with the stderr tail when it fails. */
async function runFfmpeg(plan: ConstructorParameters<typeof FfmpegJob>[0], ffmpegPath: string): Promise<void> {
  const job = new FfmpegJob(plan, { ffmpegPath }).run();
  const exit = await new Promise<{ code: number | null; signal: string | null; stderrTail: string }>((r) => job.once("exit", r));
  if (exit.code !== 0) throw new Error(`ffmpeg exited with ${exit.code ?? exit.signal}: ${tail(exit.stderrTail)}`);
}

/** `signal` abandons the job (node stopping): FFmpeg is killed and the promise rejects. */
export async function processUpload(job: VodJob, deps: VodPipelineDeps, hooks: VodHooks, signal?: AbortSignal): Promise<VodResult> {
  const { store, uploader, settings } = deps;
  const log = deps.log.child({ videoId: job.videoId });
  const keyBase = vodKeyBase(settings.keyPrefix, job.videoId);
  const markerKey = `${keyBase}/${READY_MARKER}`;

  const done = await store.get(markerKey).catch(() => null);
  if (done) {
    log.info("already processed; announcing the stored result again");
    return JSON.parse(new TextDecoder().decode(done.body)) as VodResult;
  }

  const dir = join(settings.workDir, "vod", `${job.videoId}-${randomBytes(4).toString("hex")}`);
  await mkdir(dir, { recursive: true });
  try {
    // 1. the source
    const t0 = performance.now();
    const ms = () => Math.round(performance.now() - t0);
    const timings: Record<string, number> = {};
    hooks.progress("download", 0);
    const sourceFile = join(dir, "source");
    try {
      await fetchSource(store, job.sourceKey, sourceFile, settings.source);
    } catch (error) {
      throw new VodJobError("download", (error as Error).message, error instanceof SourceMissingError);
    }
    timings.downloadedMs = ms();

    // 2. what it is
    hooks.progress("probe", 0);
    let source: VodSource;
    try {
      source = await probeFile(sourceFile, { ffprobePath: settings.ffprobePath });
    } catch (error) {
      throw new VodJobError("probe", (error as Error).message, error instanceof UnreadableMediaError);
    }
    timings.probedMs = ms();
    const refusal = refusalOf(source, settings.limits);
    if (refusal) throw new VodJobError("probe", refusal, true);
    log.info("source probed", { durationS: source.durationS, video: source.video, audio: source.audio });

    // 3. the ladder and the storyboard sprite, one decode
    const ladder = selectLadder(ladderSource(source), settings.ladder);
    const variants = variantsOf(ladder);
    const picture = source.video ? { width: source.video.width, height: source.video.height } : undefined;
    const geometry = picture ? storyboardGeometry(source.durationS, picture) : undefined;
    const hlsDir = join(dir, "hls");
    const spriteDir = join(dir, "storyboard");
    await mkdir(hlsDir, { recursive: true });
    await mkdir(spriteDir, { recursive: true });
    const plan = buildVodArgs({ input: sourceFile, outDir: hlsDir, ladder, segmentS: settings.segmentS, preset: settings.preset, fps: source.video ? vodFrameRate(source) : undefined, storyboard: geometry ? { dir: spriteDir, geometry } : undefined });

    const publisher = new HlsPublisher({ uploader, keyBase, variants, segmentS: settings.segmentS, liveWindow: 0, playlistKind: "event", log });
    let lost = 0;
    publisher.on("failed", ({ kind }) => void (kind === "segment" && lost++));
    let renditions: Rendition[] = [];
    let playable: Promise<void> | undefined;
    let extras: Promise<Extras> | undefined;
    const startExtras = (): Promise<Extras> => (extras ??= picture ? makeExtras(sourceFile, dir, source.durationS, picture, settings.ffmpegPath, log) : Promise.resolve({ thumbnails: [] }));
    publisher.on("ready", (entries) => {
      renditions = renditionsOf(entries);
      timings.playableMs = ms();
      log.info("vod playable", { ...timings });
      playable = hooks.playable({ masterKey: publisher.masterKey, renditions });
      // The poster pass waits until the video plays: it would otherwise take CPU from the first segments.
      startExtras();
    });

    const run = { epoch: 0, dir: hlsDir };
    await publisher.begin(run);
    hooks.progress("transcode", 0);
    if (signal?.aborted) throw new VodJobError("transcode", "abandoned: the node is stopping", false);
    const ffmpeg = new FfmpegJob(plan, { ffmpegPath: settings.ffmpegPath });
    const onAbort = () => void ffmpeg.kill();
    signal?.addEventListener("abort", onAbort, { once: true });
    ffmpeg.on("opened", ({ path }) => publisher.written(run, path));
    ffmpeg.on("progress", (p) => {
      if (p.timeS !== undefined && source.durationS > 0) hooks.progress("transcode", Math.min(99, Math.max(0, (100 * p.timeS) / source.durationS)));
    });
    const exit = await new Promise<{ code: number | null; signal: string | null; stderrTail: string }>((r) => {
      ffmpeg.once("exit", r);
      ffmpeg.run();
    });
    signal?.removeEventListener("abort", onAbort);
    await publisher.end(run);
    if (signal?.aborted) throw new VodJobError("transcode", "abandoned: the node is stopping", false);
    if (exit.code !== 0) {
      await extras?.catch(() => undefined);
      throw new VodJobError("transcode", `ffmpeg exited with ${exit.code ?? exit.signal}: ${tail(exit.stderrTail)}`, false);
    }
    const published = await publisher.finish({ vod: false });
    if (published.segments === 0) {
      await extras?.catch(() => undefined);
      throw new VodJobError("transcode", `no playable media could be decoded from the file: ${tail(exit.stderrTail)}`, true);
    }
    if (lost > 0) throw new VodJobError("upload", `${lost} segment(s) could not be stored`, false);
    await playable;
    hooks.progress("transcode", 100);

    // 4. poster, thumbnails, storyboard
    hooks.progress("thumbnails", 0);
    const keys: VodKeys = { master: publisher.masterKey };
    const uploads: Promise<void>[] = [];
    const store1 = (key: string, file: string) => uploads.push(uploader.upload(key, file, { cacheControl: CACHE.segment }));
    const made = await startExtras();
    if (made.poster) {
      store1((keys.poster = `${keyBase}/poster.jpg`), made.poster);
      if (made.posterSmall) store1(`${keyBase}/poster-sm.jpg`, made.posterSmall);
    }
    if (made.thumbnails.length) {
      keys.thumbnails = made.thumbnails.map((file, i) => {
        const key = `${keyBase}/thumbnails/${i + 1}.jpg`;
        store1(key, file);
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
    try {
      await Promise.all(uploads);
    } catch (error) {
      throw new VodJobError("upload", `outputs could not be stored: ${(error as Error).message}`, false);
    }

    // 5. the marker, last: its presence means every object above is stored
    const result: VodResult = { videoId: job.videoId, durationS: published.durationS || source.durationS, renditions, keys };
    await uploader.uploadBody(markerKey, JSON.stringify(result), { contentType: "application/json" });
    hooks.progress("upload", 100);
    log.info("vod stored", { ...timings, storedMs: ms(), segments: published.segments });
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface Extras {
  poster?: string;
  posterSmall?: string;
  thumbnails: string[];
}

/** Poster and thumbnails. A failure here costs the images, not the video: logged, and the result says what exists. */
async function makeExtras(input: string, dir: string, durationS: number, picture: { width: number; height: number }, ffmpegPath: string, log: Logger): Promise<Extras> {
  const out: Extras = { thumbnails: [] };
  const poster = join(dir, "poster.jpg");
  const small = join(dir, "poster-sm.jpg");
  try {
    await runFfmpeg(buildPosterArgs({ input, durationS, picture, poster, small }), ffmpegPath);
    out.poster = poster;
    out.posterSmall = small;
  } catch (error) {
    log.warn("poster not made", { error });
  }
  for (const [i, atS] of thumbnailTimes(durationS).entries()) {
    const file = join(dir, `thumb-${i + 1}.jpg`);
    try {
      await runFfmpeg(buildThumbnailArgs({ input, atS, picture, output: file }), ffmpegPath);
      out.thumbnails.push(file);
    } catch (error) {
      log.warn("thumbnail not made", { atS, error });
    }
  }
  return out;
}
