// One live stream, from the first authorized publish to ENDLIST (PeerTube live-manager style: one object owns
// the stream's FFmpeg, its segments and its playlists, and reports typed events).
//
// Invariants:
// - at most one FFmpeg process per stream, ever: a new run starts only after the previous one has exited;
// - a segment is uploaded once FFmpeg listed it in its own playlist (i.e. closed the file), and a playlist is
//   uploaded only after every segment it lists is stored; the master only after every variant playlist is;
// - the canonical playlists are ours (live/playlist.ts): each FFmpeg run (restart after a crash, or a
//   broadcaster's reconnect within the grace window) continues them after an EXT-X-DISCONTINUITY;
// - when the broadcaster leaves, FFmpeg is stopped at once (SIGINT: it closes the last segment), and after the
//   grace window the playlists get EXT-X-ENDLIST and the recording's VOD playlist is stored.

import { EventEmitter } from "node:events";
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Envelope } from "../../../shared/envelope.ts";
import { makeEvent } from "../../../shared/envelope.ts";
import type { EventDataInput, EventType } from "../../../shared/events/index.ts";
import { checkRoomId, checkUserId } from "../../../shared/names.ts";
import type { PublishClaims } from "../../../shared/tokens/publish-token.ts";
import type { Logger } from "../log.ts";
import type { LiveMetrics } from "../metrics/metrics.ts";
import { UploaderClosedError } from "../storage/errors.ts";
import type { Uploader } from "../storage/types.ts";
import { AUDIO_GROUP, buildLiveArgs, FFMPEG_MASTER, type Variant, variantsOf } from "../transcode/args.ts";
import { FfmpegJob } from "../transcode/ffmpeg.ts";
import { AAC_LC_CODEC, avcCodecString, type Ladder, selectLadder, type SourceInfo, variantBandwidth } from "../transcode/ladder.ts";
import { type MasterAudioRendition, type MasterVariant, parseFfmpegMasterCodecs, parseFfmpegPlaylist, type PlaylistSegment, renderMasterPlaylist, renderMediaPlaylist } from "./playlist.ts";

/** Cache-Control values (issue 3): segments never change; live playlists change every segment. */
export const CACHE = {
  segment: "public, max-age=31536000, immutable",
  livePlaylist: "public, max-age=1",
} as const;

/** Where events go (C1's bus implements it: durable once publish() resolves). */
export interface EventSink {
  publish(event: Envelope): Promise<void>;
}

/** What a session needs from the ingest. */
export interface IngestControl {
  pullUrl(app: string, streamId: string): string;
  isPublishing(streamId: string): boolean;
  disconnect(sessionId: string): void;
}

export interface LiveSettings {
  nodeId: string;
  segmentS: number;
  ladder: Parameters<typeof selectLadder>[1];
  x264Preset: string;
  ffmpegPath: string;
  rwTimeoutS: number;
  maxRestarts: number;
  reconnectGraceS: number;
  liveWindow: number;
  keyPrefix: string;
  workDir: string;
  record: boolean;
}

export interface LiveDeps {
  settings: LiveSettings;
  uploader: Uploader;
  publicUrl(key: string): string;
  events: EventSink;
  ingest: IngestControl;
  metrics: LiveMetrics;
  log: Logger;
  /** how the source is described (RTMP metadata, else ffprobe); injected so the manager owns the policy */
  describeSource(): Promise<SourceInfo>;
}

export type EndReason = "publisher-left" | "node-shutdown" | "transcoder-failed" | "kicked";
export type SessionState = "starting" | "live" | "waiting" | "ending" | "ended";

export interface LiveSessionEvents {
  state: [{ from: SessionState; to: SessionState }];
  /** a segment and the variant playlist listing it are stored */
  segment: [{ variant: string; epoch: number; index: number; durationS: number; uploadMs: number; discontinuity: boolean }];
  /** master + every variant playlist stored: the stream is playable */
  live: [{ playbackUrl: string; sincePublishMs: number; firstSegmentMs: number }];
  /** a new FFmpeg run began (epoch 0 = first) */
  run: [{ epoch: number; pid: number | undefined; reason: "start" | "restart" | "resume" }];
  ended: [{ reason: EndReason; durationS: number; vodUrl: string | undefined; segments: number }];
}

interface VariantState {
  variant: Variant;
  segments: PlaylistSegment[];
  /** appends in FFmpeg order even though uploads finish in any order */
  chain: Promise<void>;
  /** a segment was lost (upload gave up): the next one is marked discontinuous */
  gap: boolean;
  /** this variant's index.m3u8 is stored (the master may list it only then, or a player could get a 404) */
  playlistStored: boolean;
}

interface Run {
  epoch: number;
  dir: string;
  job: FfmpegJob;
  /** highest FFmpeg playlist index already handed to upload, per variant */
  seen: Map<string, number>;
  /** init segment upload per variant */
  init: Map<string, Promise<void>>;
  timer: NodeJS.Timeout | undefined;
  polling: Promise<void> | undefined;
  /** resolves when the run's last segments were handed over after FFmpeg exited */
  finished: Promise<void>;
  /** we stopped it on purpose (resume, end, fallback): its exit is not a crash and must not trigger a restart */
  stopping: boolean;
}

/** FFmpeg's stderr may quote the input URL, whose `?pull=` key lets anyone play any stream: never log it. */
export function redactPullKey(text: string): string {
  return text.replace(/\?pull=[^\s'":&]+/g, "?pull=…");
}

// How often FFmpeg's playlists are read for newly closed segments (the upload latency floor). Cheap: a few small files.
const POLL_MS = 50;

export class LiveSession extends EventEmitter<LiveSessionEvents> {
  readonly streamId: string;
  readonly app: string;
  readonly broadcastId: string;
  readonly claims: PublishClaims;
  readonly keyBase: string;
  #state: SessionState = "starting";
  #publisher: string;
  #publishAt: number;
  #firstSegmentAt: number | undefined;
  readonly #deps: LiveDeps;
  readonly #log: Logger;
  #ladder: Ladder | undefined;
  #variants: VariantState[] = [];
  #run: Run | undefined;
  #epoch = 0;
  #restarts = 0;
  #graceTimer: NodeJS.Timeout | undefined;
  #master: Promise<void> | undefined;
  #runLock: Promise<void> = Promise.resolve();
  #ending: Promise<void> | undefined;
  /** an upload was refused because the uploader closed: its local file is in the upload journal, keep the work dir */
  #uploadsKept = false;
  readonly #workRoot: string;
  readonly #roomId: string | undefined;

  constructor(init: { streamId: string; app: string; broadcastId: string; claims: PublishClaims; publisherSessionId: string }, deps: LiveDeps) {
    super();
    this.streamId = init.streamId;
    this.app = init.app;
    this.broadcastId = init.broadcastId;
    this.claims = init.claims;
    this.#publisher = init.publisherSessionId;
    this.#publishAt = Date.now();
    this.#deps = deps;
    this.#log = deps.log.child({ component: "live", streamId: init.streamId, broadcastId: init.broadcastId });
    this.keyBase = `${deps.settings.keyPrefix}/${init.streamId}/${init.broadcastId}`;
    this.#workRoot = join(deps.settings.workDir, `${init.streamId}-${init.broadcastId}`);
    this.#roomId = init.claims.room && checkRoomId(init.claims.room).ok ? init.claims.room : undefined;
  }

  get state(): SessionState {
    return this.#state;
  }

  get masterKey(): string {
    return `${this.keyBase}/master.m3u8`;
  }

  /**
   * A stable per-stream master (`<prefix>/<streamId>/live.m3u8`) pointing at the current broadcast, so a
   * playback URL can be known before anyone publishes (the broadcast's own master is the canonical one).
   */
  get aliasKey(): string {
    return `${this.#deps.settings.keyPrefix}/${this.streamId}/live.m3u8`;
  }

  get vodKey(): string {
    return `${this.keyBase}/vod.m3u8`;
  }

  get playbackUrl(): string {
    return this.#deps.publicUrl(this.masterKey);
  }

  /** the ingest session of the current broadcaster connection */
  get publisherSessionId(): string {
    return this.#publisher;
  }

  get recorded(): boolean {
    return this.#deps.settings.record && this.claims.rec !== false;
  }

  /** the FFmpeg process of the current run (tests kill it to check recovery) */
  get ffmpegPid(): number | undefined {
    return this.#run?.job.running ? this.#run.job.pid : undefined;
  }

  #setState(to: SessionState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.emit("state", { from, to });
  }

  /** First publish: describe the source, choose the ladder, start FFmpeg. */
  async start(): Promise<void> {
    this.#deps.metrics.streamStarted(this.streamId);
    void this.#emitEvent("stream.started", { streamId: this.streamId, roomId: this.#roomId, nodeId: this.#deps.settings.nodeId, app: this.app, resumed: false, broadcastId: this.broadcastId });
    let source: SourceInfo;
    try {
      source = await this.#deps.describeSource();
    } catch (error) {
      this.#log.error("cannot describe the source", { error });
      return this.end("transcoder-failed");
    }
    if (this.#state === "ending" || this.#state === "ended") return;
    const ladder = selectLadder(source, this.#deps.settings.ladder);
    if (ladder.video.length === 0 && !ladder.audio) {
      this.#log.error("source has neither video nor audio", { source });
      return this.end("transcoder-failed");
    }
    this.#ladder = ladder;
    this.#variants = variantsOf(ladder).map((variant) => ({ variant, segments: [], chain: Promise.resolve(), gap: false, playlistStored: false }));
    this.#log.info("ladder chosen", { source, variants: this.#variants.map((v) => v.variant.name) });
    await this.#startRun("start");
  }

  /** The broadcaster reconnected within the grace window: continue the same playlists after a discontinuity. */
  async resume(publisherSessionId: string): Promise<void> {
    if (this.#state === "ending" || this.#state === "ended") throw new Error("session already ended");
    clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    this.#publisher = publisherSessionId;
    this.#restarts = 0;
    this.#log.info("broadcaster resumed within the grace window");
    void this.#emitEvent("stream.started", { streamId: this.streamId, roomId: this.#roomId, nodeId: this.#deps.settings.nodeId, app: this.app, resumed: true, broadcastId: this.broadcastId });
    if (!this.#ladder) {
      // Still starting (metadata wait / ffprobe): start() picks the new publisher up. Back to "starting" from the
      // "waiting" the drop left, so the run start() begins is promoted to "live" (and restarted if FFmpeg crashes).
      this.#setState("starting");
      return;
    }
    this.#setState("live");
    await this.#startRun("resume");
  }

  /** The broadcaster's connection closed. */
  publisherLeft(publisherSessionId: string): void {
    if (publisherSessionId !== this.#publisher || this.#state === "ending" || this.#state === "ended") return;
    this.#setState("waiting");
    // The ingest ends FFmpeg's pull, so FFmpeg drains what is in flight and exits by itself (keeping the
    // broadcast's last second); -rw_timeout, then this timer, are the fallbacks if that does not happen.
    const run = this.#run;
    if (run) {
      const fallback = setTimeout(() => {
        run.stopping = true;
        void run.job.stop();
      }, (this.#deps.settings.rwTimeoutS + 2) * 1000);
      void run.job.exited.then(() => clearTimeout(fallback));
    }
    const graceMs = this.#deps.settings.reconnectGraceS * 1000;
    this.#log.info("broadcaster left; waiting for a reconnect", { graceS: this.#deps.settings.reconnectGraceS });
    this.#graceTimer = setTimeout(() => void this.end("publisher-left"), graceMs);
  }

  async #startRun(reason: "start" | "restart" | "resume"): Promise<void> {
    // Serialised: never two FFmpeg processes for one stream, even when a resume races a restart.
    const previous = this.#runLock;
    let release!: () => void;
    this.#runLock = new Promise((r) => (release = r));
    await previous;
    try {
      const old = this.#run;
      if (old) {
        old.stopping = true;
        await old.job.stop();
        await old.finished;
      }
      if (this.#state === "ending" || this.#state === "ended" || !this.#ladder) return;
      // The broadcaster left meanwhile: nothing to pull (a resume starts the next run).
      if (!this.#deps.ingest.isPublishing(this.streamId)) return;
      const epoch = this.#epoch++;
      const dir = join(this.#workRoot, `e${epoch}`);
      await mkdir(dir, { recursive: true });
      const s = this.#deps.settings;
      const plan = buildLiveArgs({ input: this.#deps.ingest.pullUrl(this.app, this.streamId), outDir: dir, ladder: this.#ladder, segmentS: s.segmentS, preset: s.x264Preset, rwTimeoutS: s.rwTimeoutS });
      const job = new FfmpegJob(plan, { ffmpegPath: s.ffmpegPath });
      let finish!: () => void;
      const run: Run = { epoch, dir, job, seen: new Map(), init: new Map(), timer: undefined, polling: undefined, finished: new Promise((r) => (finish = r)), stopping: false };
      this.#run = run;
      job.on("progress", (p) => this.#deps.metrics.ffmpegProgress(this.streamId, p));
      job.on("line", (line) => {
        if (/\[(error|fatal)\]/.test(line)) this.#log.debug("ffmpeg", { epoch, line: redactPullKey(line).slice(0, 500) });
      });
      job.on("start", ({ pid }) => this.emit("run", { epoch, pid, reason }));
      job.on("exit", (exit) => void this.#onExit(run, exit).finally(finish));
      run.timer = setInterval(() => void this.#poll(run), POLL_MS);
      job.run();
      if (this.#state === "starting") this.#setState("live");
      this.#log.info("ffmpeg started", { epoch, reason });
    } finally {
      release();
    }
  }

  async #onExit(run: Run, exit: { code: number | null; signal: string | null; stderrTail: string }): Promise<void> {
    clearInterval(run.timer);
    await run.polling;
    await this.#poll(run); // FFmpeg lists its last segment when it exits
    this.#deps.metrics.ffmpegProgress(this.streamId, { speed: 0, fps: 0 });
    const publisherThere = this.#deps.ingest.isPublishing(this.streamId) && (this.#state === "live" || this.#state === "starting");
    this.#log.info("ffmpeg exited", { epoch: run.epoch, code: exit.code, signal: exit.signal, publisherThere, stopped: run.stopping });
    // A run we stopped on purpose is not a crash: whoever stopped it (a resume, the end) decides what comes next.
    if (run.stopping || !publisherThere || this.#run !== run) return;
    // FFmpeg died under a broadcaster who is still sending: restart, the playlist continues after a discontinuity.
    if (this.#restarts >= this.#deps.settings.maxRestarts) {
      this.#log.error("ffmpeg keeps failing; ending the stream", { restarts: this.#restarts, stderr: redactPullKey(exit.stderrTail).slice(-2000) });
      this.#deps.ingest.disconnect(this.#publisher);
      void this.end("transcoder-failed");
      return;
    }
    this.#restarts++;
    this.#deps.metrics.ffmpegRestarted(this.streamId);
    this.#log.warn("ffmpeg died while the broadcaster is live; restarting", { restarts: this.#restarts, code: exit.code, signal: exit.signal, stderr: redactPullKey(exit.stderrTail).slice(-1000) });
    await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** (this.#restarts - 1))));
    // A resume or the end may have taken over during the back-off (it marks this run `stopping`, then waits for
    // this handler to finish before starting its own run): that run is the one that counts, start no other.
    if (run.stopping || this.#run !== run || this.#state === "ending" || this.#state === "ended") return;
    void this.#startRun("restart");
  }

  /** Hands every segment FFmpeg has closed since the last poll to the uploader. */
  #poll(run: Run): Promise<void> {
    if (run.polling) return run.polling;
    run.polling = (async () => {
      for (const v of this.#variants) {
        const name = v.variant.name;
        let text: string;
        try {
          text = await readFile(join(run.dir, name, "index.m3u8"), "utf8");
        } catch {
          continue; // not written yet
        }
        // Only complete lines: FFmpeg may be rewriting the file as we read it.
        const { entries } = parseFfmpegPlaylist(text.slice(0, text.lastIndexOf("\n") + 1));
        const seen = run.seen.get(name) ?? -1;
        for (const entry of entries) {
          if (entry.index <= seen || !entry.map) continue;
          const firstOfRun = !run.seen.has(name);
          run.seen.set(name, entry.index);
          this.#onSegment(run, v, entry.index, entry.uri, entry.map, entry.durationS, firstOfRun);
        }
      }
    })().finally(() => (run.polling = undefined));
    return run.polling;
  }

  #onSegment(run: Run, v: VariantState, index: number, file: string, map: string, durationS: number, firstOfRun: boolean): void {
    const { uploader, metrics } = this.#deps;
    const name = v.variant.name;
    const dir = join(run.dir, name);
    const mapName = `e${run.epoch}-init.mp4`;
    const segName = `e${run.epoch}-${index}.m4s`;
    const started = Date.now();
    let init = run.init.get(name);
    if (!init) {
      init = uploader.upload(`${this.keyBase}/${name}/${mapName}`, join(dir, map), { cacheControl: CACHE.segment });
      run.init.set(name, init);
    }
    const stored = Promise.all([init, uploader.upload(`${this.keyBase}/${name}/${segName}`, join(dir, file), { cacheControl: CACHE.segment })]);
    v.chain = v.chain
      .then(() => stored)
      .then(
        async () => {
          const uploadMs = Date.now() - started;
          metrics.segmentStored(uploadMs / 1000);
          const discontinuity = (firstOfRun && run.epoch > 0) || v.gap;
          v.gap = false;
          v.segments.push({ uri: segName, durationS, map: mapName, discontinuity });
          await this.#uploadPlaylist(v, false);
          v.playlistStored = true;
          this.#firstSegmentAt ??= Date.now();
          this.emit("segment", { variant: name, epoch: run.epoch, index, durationS, uploadMs, discontinuity });
          this.#maybeMaster(run);
        },
        (error: unknown) => {
          // Retrying could not help (local file gone, spool full, uploader closed): skip it, mark the gap.
          if (error instanceof UploaderClosedError) this.#uploadsKept = true;
          v.gap = true;
          metrics.uploadFailed("segment");
          this.#log.error("segment not stored; skipped", { variant: name, epoch: run.epoch, index, error });
        },
      )
      .catch((error: unknown) => {
        if (error instanceof UploaderClosedError) this.#uploadsKept = true;
        metrics.uploadFailed("playlist");
        this.#log.error("playlist not stored", { variant: name, error });
      });
  }

  #uploadPlaylist(v: VariantState, ended: boolean): Promise<void> {
    const s = this.#deps.settings;
    const text = renderMediaPlaylist(v.segments, { targetS: s.segmentS, kind: "live", window: s.liveWindow, ended });
    // While storage is down only the newest version of a live playlist matters: older queued ones are dropped.
    return this.#deps.uploader.uploadBody(`${this.keyBase}/${v.variant.name}/index.m3u8`, text, { cacheControl: CACHE.livePlaylist, replaceQueued: true });
  }

  #maybeMaster(run: Run): void {
    if (this.#master || this.#variants.some((v) => !v.playlistStored)) return;
    this.#master = (async () => {
      const { variants, audio } = await this.#masterEntries(run, "index.m3u8");
      await this.#deps.uploader.uploadBody(this.masterKey, renderMasterPlaylist(variants, audio), { cacheControl: CACHE.livePlaylist });
      // After the broadcast's own master: everything the alias lists is stored too.
      const prefixed = <T extends { uri: string }>(xs: T[]) => xs.map((x) => ({ ...x, uri: `${this.broadcastId}/${x.uri}` }));
      await this.#deps.uploader.uploadBody(this.aliasKey, renderMasterPlaylist(prefixed(variants), prefixed(audio)), { cacheControl: CACHE.livePlaylist, replaceQueued: true });
      const now = Date.now();
      const playbackUrl = this.playbackUrl;
      this.#log.info("stream is live", { playbackUrl, streamUrl: this.#deps.publicUrl(this.aliasKey), sincePublishMs: now - this.#publishAt });
      this.emit("live", { playbackUrl, sincePublishMs: now - this.#publishAt, firstSegmentMs: (this.#firstSegmentAt ?? now) - this.#publishAt });
      const audioRendition = this.#variants.find((v) => v.variant.rendition)?.variant.audio;
      await this.#emitEvent("stream.live", {
        streamId: this.streamId,
        roomId: this.#roomId,
        nodeId: this.#deps.settings.nodeId,
        playbackUrl,
        broadcastId: this.broadcastId,
        masterKey: this.masterKey,
        renditions: [
          ...variants.map((m) => ({ name: m.name, ...(m.width ? { width: m.width } : {}), ...(m.height ? { height: m.height } : {}), bandwidth: m.bandwidth, codecs: m.codecs })),
          ...(audioRendition ? [{ name: "audio", bandwidth: variantBandwidth(undefined, audioRendition).peak, codecs: AAC_LC_CODEC }] : []),
        ],
      });
    })().catch((error: unknown) => {
      this.#master = undefined; // try again with the next segment
      this.#deps.metrics.uploadFailed("playlist");
      this.#log.error("master playlist not stored", { error });
    });
  }

  /** What a master playlist lists: variant streams, and the separate audio rendition when there is one. */
  async #masterEntries(run: Run | undefined, playlistName: string): Promise<{ variants: (MasterVariant & { name: string })[]; audio: MasterAudioRendition[] }> {
    // Codecs of copied (passthrough) video come from FFmpeg's own master, which read them from the stream.
    let ffmpegCodecs = new Map<string, string>();
    if (run && this.#variants.some((v) => v.variant.video?.mode === "copy")) {
      ffmpegCodecs = parseFfmpegMasterCodecs(await readFile(join(run.dir, FFMPEG_MASTER), "utf8").catch(() => ""));
    }
    const variants = this.#variants
      .filter(({ variant }) => !variant.rendition)
      .map(({ variant }) => {
        const { video } = variant;
        const audio = variant.audio ?? variant.audioGroup;
        const bw = variantBandwidth(video, audio);
        const videoCodec = video ? (video.mode === "copy" ? (ffmpegCodecs.get(variant.name)?.split(",")[0] ?? avcCodecString(video.level)) : avcCodecString(video.level)) : undefined;
        const codecs = [videoCodec, audio ? AAC_LC_CODEC : undefined].filter(Boolean).join(",");
        return { name: variant.name, uri: `${variant.name}/${playlistName}`, bandwidth: bw.peak, averageBandwidth: bw.average, width: video?.width, height: video?.height, frameRate: video?.fps, codecs, audioGroup: variant.audioGroup ? AUDIO_GROUP : undefined };
      });
    const audio = this.#variants
      .filter(({ variant }) => variant.rendition)
      .map(({ variant }) => ({ groupId: AUDIO_GROUP, name: "audio", uri: `${variant.name}/${playlistName}`, channels: variant.audio?.channels ?? 2 }));
    return { variants, audio };
  }

  /** Ends the stream: ENDLIST on every live playlist, the VOD playlists, stream.ended and media.ready. Idempotent. */
  end(reason: EndReason): Promise<void> {
    this.#ending ??= this.#end(reason);
    return this.#ending;
  }

  async #end(reason: EndReason): Promise<void> {
    clearTimeout(this.#graceTimer);
    this.#setState("ending");
    // Wait for any run being started, then stop FFmpeg (SIGINT: it closes the segment in progress).
    await this.#runLock;
    if (this.#run) {
      this.#run.stopping = true;
      await this.#run.job.stop();
      await this.#run.finished;
    }
    await Promise.all(this.#variants.map((v) => v.chain));
    await this.#master;
    const total = this.#variants[0]?.segments.length ?? 0;
    const durationS = Math.round((this.#variants[0]?.segments.reduce((t, s) => t + s.durationS, 0) ?? 0) * 1000) / 1000;
    let vodUrl: string | undefined;
    try {
      if (total > 0) {
        await Promise.all(this.#variants.map((v) => this.#uploadPlaylist(v, true)));
        if (this.recorded) {
          const s = this.#deps.settings;
          await Promise.all(
            this.#variants.map((v) =>
              this.#deps.uploader.uploadBody(`${this.keyBase}/${v.variant.name}/vod.m3u8`, renderMediaPlaylist(v.segments, { targetS: s.segmentS, kind: "vod", ended: true }), { cacheControl: CACHE.segment }),
            ),
          );
          const vod = await this.#masterEntries(this.#run, "vod.m3u8");
          await this.#deps.uploader.uploadBody(this.vodKey, renderMasterPlaylist(vod.variants, vod.audio), { cacheControl: CACHE.segment });
          vodUrl = this.#deps.publicUrl(this.vodKey);
        }
      }
    } catch (error) {
      if (error instanceof UploaderClosedError) this.#uploadsKept = true;
      this.#deps.metrics.uploadFailed("playlist");
      this.#log.error("final playlists not stored", { error });
    }
    this.#setState("ended");
    this.#deps.metrics.streamEnded(this.streamId, reason);
    this.#log.info("stream ended", { reason, durationS, segments: total, vodUrl });
    this.emit("ended", { reason, durationS, vodUrl, segments: total });
    await this.#emitEvent("stream.ended", { streamId: this.streamId, roomId: this.#roomId, nodeId: this.#deps.settings.nodeId, durationS, reason, broadcastId: this.broadcastId, ...(vodUrl ? { vodUrl, vodKey: this.vodKey } : {}) });
    if (vodUrl) {
      const owner = this.claims.sub && checkUserId(this.claims.sub).ok ? this.claims.sub : undefined;
      await this.#emitEvent("media.ready", { mediaId: this.broadcastId, streamId: this.streamId, roomId: this.#roomId, ownerId: owner, playbackUrl: vodUrl, playlistKey: this.vodKey, durationS });
    }
    // Segments the closed uploader refused are in its journal, which recover() replays from these very files:
    // keep the work dir then (and while any upload is still pending at shutdown, as it may be one of ours).
    // (Pending counts every stream's uploads, so it only decides at node shutdown, when the uploader is closing.)
    const pending = reason === "node-shutdown" ? this.#deps.uploader.stats().pending : 0;
    if (this.#uploadsKept || pending > 0) {
      this.#log.warn("uploads not stored; local files kept for recovery", { dir: this.#workRoot, pending });
      return;
    }
    // Everything is stored (uploads resolved), so what is left locally is FFmpeg's own playlists.
    await rm(this.#workRoot, { recursive: true, force: true }).catch(() => {});
  }

  async #emitEvent<T extends EventType>(type: T, data: EventDataInput<T>): Promise<void> {
    try {
      const event = makeEvent(type, data, { source: `media-node/${this.#deps.settings.nodeId}`, subject: `stream/${this.streamId}` });
      await this.#deps.events.publish(event as Envelope);
    } catch (error) {
      this.#log.error("event not published", { type, error });
    }
  }
}
