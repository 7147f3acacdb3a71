// One live stream, from the first authorized publish to ENDLIST (PeerTube live-manager style: one object owns
// the stream's lifecycle and reports typed events). It orchestrates two parts that know nothing of each other:
// a Transcoder (transcode/transcoder.ts: the FFmpeg runs, crash restarts, a new run on resume) and an
// HlsPublisher (hls/publisher.ts: segments and playlists into storage, in order). What is here is the state
// machine, the grace window, and the stream's events (typed session events, and the bus's stream.* events).
//
// - each FFmpeg run (restart after a crash, or a broadcaster's reconnect within the grace window) continues
//   the same playlists after an EXT-X-DISCONTINUITY;
// - when the broadcaster leaves, FFmpeg drains what is in flight and exits, and after the grace window the
//   playlists get EXT-X-ENDLIST and the recording's VOD playlist is stored.

import { EventEmitter } from "node:events";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { Envelope } from "../../../shared/envelope.ts";
import { makeEvent } from "../../../shared/envelope.ts";
import type { EventDataInput, EventType } from "../../../shared/events/index.ts";
import { checkRoomId, checkUserId } from "../../../shared/names.ts";
import type { PublishClaims } from "../../../shared/tokens/publish-token.ts";
import type { MasterEntries } from "../hls/playlists.ts";
import { HlsPublisher } from "../hls/publisher.ts";
import type { AnnounceSink } from "../llhls/announcer.ts";
import { partPlan } from "../llhls/packager.ts";
import { LlPublisher } from "../llhls/publisher.ts";
import type { Logger } from "../log.ts";
import type { LiveMetrics } from "../metrics/metrics.ts";
import type { Uploader } from "../storage/types.ts";
import { buildLiveArgs, buildLowLatencyArgs, FFMPEG_MASTER, variantsOf } from "../transcode/args.ts";
import { AAC_LC_CODEC, type AudioSpec, type Ladder, selectLadder, type SourceInfo, variantBandwidth } from "../transcode/ladder.ts";
import { SpeedWatch } from "../transcode/speed-watch.ts";
import { FfmpegTranscoder, type RunReason, type Transcoder } from "../transcode/transcoder.ts";
import type { EventSink } from "../bus/event-bus.ts";
import type { BroadcastRegistry, BroadcastState } from "../fleet/broadcasts.ts";
import type { Lease } from "../fleet/leases.ts";
import { epochOf } from "../hls/journal.ts";
import type { PlaylistSegment } from "../hls/playlists.ts";

/** After the broadcaster left, a run whose encoded media time does not advance for this long is stopped. */
export const DRAIN_STALL_MS = 10_000;

/** Where events go: the bus, durable once publish() resolves. */
export type { EventSink } from "../bus/event-bus.ts";

/** What a session needs from the ingest. */
export interface IngestControl {
  pullUrl(app: string, streamId: string): string;
  isPublishing(streamId: string): boolean;
  disconnect(sessionId: string): void;
  /** ends the node's pull made with `pullUrl` (that FFmpeg reads what was sent to it, then sees the end) */
  endPull(pullUrl: string): void;
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
  /** after the broadcaster left, FFmpeg encodes what it received for at most this long (while it progresses) */
  drainMaxS: number;
  /** below this ladder speed for `shedAfterS`, the top rung is shed (0 = never) */
  shedBelowSpeed: number;
  shedAfterS: number;
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
  /** low-latency HLS, when the node can announce parts to the edge (LLHLS_EDGE_URL): for streams that ask for it */
  lowLatency?: { partMs: number; announcer(streamId: string, broadcastId: string): AnnounceSink } | undefined;
}

export type EndReason = "publisher-left" | "node-shutdown" | "transcoder-failed" | "kicked";
/**
 * How a session stops without ending its broadcast (no ENDLIST, no stream.ended, the broadcast's state kept for
 * another node): `handed-off` (drained: the broadcaster's reconnect continues elsewhere), `lease-lost` (another
 * node holds the stream now).
 */
export type LeaveReason = "handed-off" | "lease-lost";

/** What makes a session one node's part of a fleet: its lease on the stream, and the broadcast's shared state. */
export interface FleetLink {
  lease: Lease;
  broadcasts: BroadcastRegistry;
  /** segments per journal page (hls/journal.ts) */
  journalPage: number;
}

/** A broadcast another node started and stored so far, to continue here. */
export interface Continuation {
  state: BroadcastState;
  /** stored segments per variant name, in order */
  segments: ReadonlyMap<string, readonly PlaylistSegment[]>;
}
export type SessionState = "starting" | "live" | "waiting" | "ending" | "ended";

export interface LiveSessionEvents {
  state: [{ from: SessionState; to: SessionState }];
  /** a segment and the variant playlist listing it are stored */
  segment: [{ variant: string; epoch: number; index: number; durationS: number; uploadMs: number; discontinuity: boolean }];
  /** master + every variant playlist stored (low latency: the LL master, and the edge lists every rendition): playable */
  live: [{ playbackUrl: string; sincePublishMs: number; firstSegmentMs: number; lowLatency: boolean }];
  /** low latency: a part was stored and the edge took its announcement (`lagMs` after its last frame came in) */
  part: [{ variant: string; msn: number; index: number; durationS: number; independent: boolean; storeMs: number; lagMs: number; sincePublishMs: number }];
  /** a new FFmpeg run began (epoch 0 = first) */
  run: [{ epoch: number; pid: number | undefined; reason: RunReason }];
  /** the ladder could not keep up: `shed` rungs are no longer encoded, `kept` are (the master lists only these) */
  degraded: [{ shed: string[]; kept: string[]; speed: number }];
  ended: [{ reason: EndReason | LeaveReason; durationS: number; vodUrl: string | undefined; segments: number }];
}

export class LiveSession extends EventEmitter<LiveSessionEvents> {
  readonly streamId: string;
  readonly app: string;
  readonly broadcastId: string;
  readonly claims: PublishClaims;
  readonly keyBase: string;
  #state: SessionState = "starting";
  #publisher: string;
  #publishAt: number;
  /** when the broadcaster's first frame was sent: its publish request (frames flow while the key is checked) */
  #firstFrameAt: number;
  #firstSegmentAt: number | undefined;
  readonly #deps: LiveDeps;
  readonly #log: Logger;
  /** both exist once the source is described and the ladder chosen */
  #hls: HlsPublisher | LlPublisher | undefined;
  /** this broadcast publishes low-latency HLS (its playlists are the edge's; it never sheds rungs) */
  #lowLatency = false;
  #transcoder: Transcoder | undefined;
  /** the separate audio rendition of the ladder, if it has one */
  #audioRendition: AudioSpec | undefined;
  /** what the next FFmpeg run encodes (rungs shed from the top when the node cannot keep up) */
  #ladder: Ladder | undefined;
  #speed: SpeedWatch;
  /** a shed is under way (one at a time) */
  #shedding = false;
  #graceTimer: NodeJS.Timeout | undefined;
  /** stream.live on the bus: stream.ended waits for it */
  #liveEvent: Promise<void> | undefined;
  #ending: Promise<void> | undefined;
  readonly #workRoot: string;
  readonly #roomId: string | undefined;
  readonly #fleet: FleetLink | undefined;
  readonly #continueFrom: Continuation | undefined;
  #startedAt: number;
  /** how the session stopped without ending the broadcast, once it did */
  #left: LeaveReason | undefined;

  constructor(
    init: { streamId: string; app: string; broadcastId: string; claims: PublishClaims; publisherSessionId: string; requestedAt?: number; fleet?: FleetLink | undefined; continueFrom?: Continuation | undefined },
    deps: LiveDeps,
  ) {
    super();
    this.streamId = init.streamId;
    this.app = init.app;
    // A continued broadcast keeps its id, folder and playlists.
    this.broadcastId = init.continueFrom?.state.broadcastId ?? init.broadcastId;
    this.#fleet = init.fleet;
    this.#continueFrom = init.continueFrom;
    this.#startedAt = init.continueFrom?.state.startedAt ?? Date.now();
    this.claims = init.claims;
    this.#publisher = init.publisherSessionId;
    this.#publishAt = Date.now();
    this.#firstFrameAt = Math.min(init.requestedAt ?? this.#publishAt, this.#publishAt);
    this.#deps = deps;
    this.#log = deps.log.child({ component: "live", streamId: init.streamId, broadcastId: this.broadcastId });
    this.keyBase = init.continueFrom?.state.keyBase ?? `${deps.settings.keyPrefix}/${init.streamId}/${this.broadcastId}`;
    this.#workRoot = join(deps.settings.workDir, `${init.streamId}-${this.broadcastId}`);
    init.fleet?.lease.setBroadcast(this.broadcastId);
    // Another node holds the stream now (this one was cut off longer than the lease): stop writing at once.
    init.fleet?.lease.on("lost", () => void this.#leave("lease-lost"));
    this.#roomId = init.claims.room && checkRoomId(init.claims.room).ok ? init.claims.room : undefined;
    this.#speed = new SpeedWatch({ belowSpeed: deps.settings.shedBelowSpeed, windowS: deps.settings.shedAfterS });
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

  /** the stable per-stream low-latency master (`<prefix>/<streamId>/live-ll.m3u8`), for low-latency broadcasts */
  get lowLatencyAliasKey(): string {
    return `${this.#deps.settings.keyPrefix}/${this.streamId}/live-ll.m3u8`;
  }

  /** this broadcast publishes low-latency HLS (known once the source is described) */
  get lowLatency(): boolean {
    return this.#lowLatency;
  }

  get playbackUrl(): string {
    return this.#deps.publicUrl(this.masterKey);
  }

  /** the ingest session of the current broadcaster connection */
  get publisherSessionId(): string {
    return this.#publisher;
  }

  get recorded(): boolean {
    if (this.#continueFrom) return this.#continueFrom.state.record;
    return this.#deps.settings.record && this.claims.rec !== false;
  }

  /** a broadcast another node started, continued here */
  get continued(): boolean {
    return this.#continueFrom !== undefined;
  }

  /** how the session stopped without ending its broadcast (handed over, lease lost), if it did */
  get left(): LeaveReason | undefined {
    return this.#left;
  }

  /** the FFmpeg process of the current run (tests kill it to check recovery) */
  get ffmpegPid(): number | undefined {
    return this.#transcoder?.pid;
  }

  #setState(to: SessionState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.emit("state", { from, to });
  }

  #over(): boolean {
    return this.#state === "ending" || this.#state === "ended";
  }

  /** First publish: describe the source, choose the ladder, start FFmpeg. */
  async start(): Promise<void> {
    this.#deps.metrics.streamStarted(this.streamId);
    if (this.#continueFrom) this.#log.info("continuing a broadcast another node started (its node stopped; its broadcaster reconnected here)", { from: this.#continueFrom.state.nodeId, stored: Object.fromEntries([...this.#continueFrom.segments].map(([k, v]) => [k, v.length])) });
    void this.#emitEvent("stream.started", { streamId: this.streamId, roomId: this.#roomId, nodeId: this.#deps.settings.nodeId, app: this.app, resumed: this.#continueFrom !== undefined, broadcastId: this.broadcastId });
    let source: SourceInfo;
    try {
      source = await this.#deps.describeSource();
    } catch (error) {
      this.#log.error("cannot describe the source", { error });
      return this.end("transcoder-failed");
    }
    if (this.#over()) return;
    const s = this.#deps.settings;
    const ll = this.claims.lat === "low" ? this.#deps.lowLatency : undefined;
    if (this.claims.lat === "low" && !ll) this.#log.warn("the stream asks for low latency but this node announces no parts (LLHLS_EDGE_URL unset): classic HLS only");
    if (ll) return this.#startLowLatency(source, ll);
    const ladder = selectLadder(source, this.#deps.settings.ladder);
    const variants = variantsOf(ladder);
    if (variants.length === 0) {
      this.#log.error("source has neither video nor audio", { source });
      return this.end("transcoder-failed");
    }
    this.#log.info("ladder chosen", { source, variants: variants.map((v) => v.name) });
    this.#ladder = ladder;
    this.#audioRendition = variants.find((v) => v.rendition)?.audio;
    const seed = this.#continueFrom?.segments;
    const hls = new HlsPublisher({
      uploader: this.#deps.uploader,
      keyBase: this.keyBase,
      variants,
      segmentS: s.segmentS,
      liveWindow: s.liveWindow,
      aliases: [{ key: this.aliasKey, uriPrefix: this.broadcastId }],
      sourceMaster: FFMPEG_MASTER,
      ...(seed ? { seed } : {}),
      ...(this.#fleet ? { journal: { pageSize: this.#fleet.journalPage } } : {}),
      log: this.#log,
    });
    // After every run another node stored: none of its object names is reused.
    let firstEpoch = 0;
    for (const list of seed?.values() ?? []) for (const seg of list) firstEpoch = Math.max(firstEpoch, (epochOf(seg.uri) ?? -1) + 1);
    if (this.#fleet) void this.#saveState(variants.map((v) => v.name));
    hls.on("segment", (seg) => {
      this.#deps.metrics.segmentStored(seg.uploadMs / 1000);
      this.#firstSegmentAt ??= Date.now();
      this.emit("segment", seg);
    });
    hls.on("failed", ({ kind }) => this.#deps.metrics.uploadFailed(kind));
    hls.on("ready", (entries) => this.#onPlayable(entries));
    const transcoder = new FfmpegTranscoder({
      ffmpegPath: s.ffmpegPath,
      workRoot: this.#workRoot,
      firstEpoch,
      plan: (outDir) => buildLiveArgs({ input: this.#deps.ingest.pullUrl(this.app, this.streamId), outDir, ladder: this.#ladder ?? ladder, segmentS: s.segmentS, preset: s.x264Preset, rwTimeoutS: s.rwTimeoutS }),
      maxRestarts: s.maxRestarts,
      // A run's input is there while the broadcaster is (a drop leaves the session "waiting": no restart then).
      hasInput: () => this.#hasInput(),
      // A run's media time 0 is the broadcaster's first frame of it: for the first run that frame was sent when the
      // broadcaster asked to publish (the ingest hands FFmpeg the stream from its start); later runs start from the
      // ingest's cached GOP (the broadcaster's last keyframe), so their stamps may be up to one GOP late.
      output: {
        begin: (run) => hls.begin({ ...run, startedAtMs: run.epoch === firstEpoch ? this.#firstFrameAt : Date.now() }),
        written: (run, path) => hls.written(run, path),
        end: (run) => hls.end(run),
      },
      log: this.#log,
    });
    this.#hls = hls;
    await this.#run(transcoder);
  }

  #hasInput(): boolean {
    return this.#deps.ingest.isPublishing(this.streamId) && (this.#state === "live" || this.#state === "starting");
  }

  #runStartedAt(epoch: number): number {
    return epoch === 0 ? this.#firstFrameAt : Date.now();
  }

  /** Wires the transcoder's events and starts its first run. */
  async #run(transcoder: Transcoder): Promise<void> {
    transcoder.on("run", (run) => {
      this.#speed.reset();
      this.emit("run", run);
    });
    transcoder.on("progress", (p) => {
      this.#deps.metrics.ffmpegProgress(this.streamId, p);
      if (p.timeS === undefined || this.#state !== "live" || this.#lowLatency) return;
      const verdict = this.#speed.sample(Date.now(), p.timeS);
      if (verdict.behind && verdict.speed !== undefined) void this.#shed(verdict.speed);
    });
    transcoder.on("exit", () => this.#deps.metrics.ffmpegProgress(this.streamId, { speed: 0, fps: 0 }));
    transcoder.on("crash", ({ restarting }) => {
      if (restarting) return this.#deps.metrics.ffmpegRestarted(this.streamId);
      this.#deps.ingest.disconnect(this.#publisher);
      void this.end("transcoder-failed");
    });
    this.#transcoder = transcoder;
    if ((await transcoder.startRun("start")) && this.#state === "starting") this.#setState("live");
  }

  /**
   * Low latency: FFmpeg writes fragmented MP4 per rendition to pipes, the LL publisher cuts parts from them,
   * stores each and announces it to the edge's object for the stream (which serves the LL-HLS playlists), and
   * keeps classic playlists of the same segments in storage. Every rung is encoded (no passthrough) with the audio
   * muxed in, at a constant frame rate so parts are whole frames. Rungs are never shed: a shed restarts the
   * encoder, which costs a low-latency viewer more than a late rung (MEDIA_MAX_LIVE_STREAMS keeps the node from
   * taking streams it cannot encode).
   */
  async #startLowLatency(source: SourceInfo, ll: NonNullable<LiveDeps["lowLatency"]>): Promise<void> {
    const s = this.#deps.settings;
    const ladder = selectLadder(source, { ...s.ladder, passthrough: false, separateAudio: false });
    if (ladder.video.length === 0 && !ladder.audio) {
      this.#log.error("source has neither video nor audio", { source });
      return this.end("transcoder-failed");
    }
    const fps = lowLatencyFps(source.video?.fps);
    const parts = partPlan(ladder.video.length > 0 ? { kind: "video", fps } : { kind: "audio", sampleRate: ladder.audio!.sampleRate }, ll.partMs);
    const plan = (input: string) => buildLowLatencyArgs({ input, ladder, segmentS: s.segmentS, preset: s.x264Preset, fps, fragmentUs: parts.fragmentUs, rwTimeoutS: s.rwTimeoutS });
    const variants = plan("-").variants;
    this.#log.info("low-latency ladder chosen", { source, variants: variants.map((v) => v.name), fps, framesPerPart: parts.frames, partTargetS: parts.partTargetS });
    this.#ladder = ladder;
    this.#lowLatency = true;
    const hls = new LlPublisher({
      uploader: this.#deps.uploader,
      keyBase: this.keyBase,
      variants,
      segmentS: s.segmentS,
      partTargetS: parts.partTargetS,
      liveWindow: s.liveWindow,
      aliases: { classic: this.aliasKey, low: this.lowLatencyAliasKey, uriPrefix: this.broadcastId },
      announce: ll.announcer(this.streamId, this.broadcastId),
      log: this.#log,
    });
    hls.on("segment", (seg) => {
      this.#deps.metrics.segmentStored(seg.uploadMs / 1000);
      this.emit("segment", seg);
    });
    hls.on("part", (part) => {
      this.#firstSegmentAt ??= Date.now();
      this.#deps.metrics.partAnnounced(part.lagMs / 1000);
      this.emit("part", { ...part, sincePublishMs: Date.now() - this.#publishAt });
    });
    hls.on("failed", ({ kind }) => this.#deps.metrics.uploadFailed(kind));
    hls.on("ready", (entries) => this.#onPlayable(entries));
    const transcoder = new FfmpegTranscoder({
      ffmpegPath: s.ffmpegPath,
      workRoot: this.#workRoot,
      plan: () => plan(this.#deps.ingest.pullUrl(this.app, this.streamId)),
      maxRestarts: s.maxRestarts,
      hasInput: () => this.#hasInput(),
      output: {
        begin: (run) => hls.begin({ ...run, startedAtMs: this.#runStartedAt(run.epoch) }),
        written: () => {},
        attach: (run, outputs) => hls.attach(run, outputs),
        end: (run) => hls.end(run),
      },
      log: this.#log,
    });
    this.#hls = hls;
    await this.#run(transcoder);
  }

  /** The broadcaster reconnected within the grace window: continue the same playlists after a discontinuity. */
  async resume(publisherSessionId: string): Promise<void> {
    if (this.#over()) throw new Error("session already ended");
    clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    this.#publisher = publisherSessionId;
    this.#log.info("broadcaster resumed within the grace window");
    void this.#emitEvent("stream.started", { streamId: this.streamId, roomId: this.#roomId, nodeId: this.#deps.settings.nodeId, app: this.app, resumed: true, broadcastId: this.broadcastId });
    if (!this.#transcoder) {
      // Still starting (metadata wait / ffprobe): start() picks the new publisher up. Back to "starting" from the
      // "waiting" the drop left, so the run start() begins is promoted to "live" (and restarted if FFmpeg crashes).
      this.#setState("starting");
      return;
    }
    this.#setState("live");
    await this.#transcoder.startRun("resume");
  }

  /** The broadcaster's connection closed. */
  publisherLeft(publisherSessionId: string): void {
    if (publisherSessionId !== this.#publisher || this.#over()) return;
    this.#setState("waiting");
    // The ingest ends FFmpeg's pull, so FFmpeg drains what is in flight and exits by itself (keeping the
    // broadcast's last second); -rw_timeout, then this fallback, are there if that does not happen.
    // An overloaded ladder is behind: it keeps encoding what it received while it makes progress (bounded).
    // "No progress" must outlast a loaded machine's pauses between stats lines (seconds), not just -rw_timeout.
    this.#transcoder?.inputEnded({ stallMs: Math.max(DRAIN_STALL_MS, (this.#deps.settings.rwTimeoutS + 2) * 1000), maxMs: this.#deps.settings.drainMaxS * 1000 });
    this.#log.info("broadcaster left; waiting for a reconnect", { graceS: this.#deps.settings.reconnectGraceS });
    this.#graceTimer = setTimeout(() => void this.end("publisher-left"), this.#deps.settings.reconnectGraceS * 1000);
  }

  /**
   * The ladder stays slower than real time: shed its top encoded rung (never the last one). A new run encodes the
   * kept rungs (after a discontinuity) and the current one hands over, encoding what it already received; the
   * master stops listing the shed rung; a metric counts it and stream.degraded tells the room.
   */
  async #shed(speed: number): Promise<void> {
    const ladder = this.#ladder;
    const hls = this.#hls;
    const transcoder = this.#transcoder;
    if (this.#shedding || !ladder || !(hls instanceof HlsPublisher) || !transcoder || this.#state !== "live") return;
    const encoded = ladder.video.filter((r) => r.mode === "encode").sort((a, b) => b.height - a.height);
    if (encoded.length <= 1) return; // the last rung is kept whatever the speed: a stream, however late
    const top = encoded[0]!;
    this.#shedding = true;
    try {
      this.#ladder = { ...ladder, video: ladder.video.filter((r) => r !== top) };
      this.#speed.reset();
      this.#log.warn("ladder slower than real time; shedding its top rung", { speed: Math.round(speed * 1000) / 1000, shed: top.name, kept: this.#ladder.video.map((r) => r.name) });
      // The next run encodes the kept rungs from now on; once it receives the stream, the current one gets no more
      // input but encodes what it already received (being behind, that is seconds of the broadcast), then exits.
      const started = transcoder.startRun("shed", {
        handOver: {
          cutInput: (input) => this.#deps.ingest.endPull(input),
          bounds: { stallMs: Math.max(DRAIN_STALL_MS, (this.#deps.settings.rwTimeoutS + 2) * 1000), maxMs: this.#deps.settings.drainMaxS * 1000 },
        },
      });
      const entries = await hls.drop(top.name);
      await started;
      this.#deps.metrics.rungShed(top.name);
      const kept = [...entries.variants.map((v) => v.name), ...entries.audio.map((a) => a.name)];
      this.emit("degraded", { shed: [top.name], kept, speed });
      void this.#emitEvent("stream.degraded", { streamId: this.streamId, roomId: this.#roomId, nodeId: this.#deps.settings.nodeId, broadcastId: this.broadcastId, renditions: this.#renditions(entries), shed: [top.name], speed: Math.max(0, speed) });
    } catch (error) {
      this.#log.error("shedding a rung failed", { error });
    } finally {
      this.#shedding = false;
    }
  }

  #renditions(entries: MasterEntries) {
    const audio = this.#audioRendition;
    return [
      ...entries.variants.map((m) => ({ name: m.name, ...(m.width ? { width: m.width } : {}), ...(m.height ? { height: m.height } : {}), bandwidth: m.bandwidth, codecs: m.codecs })),
      ...(audio ? [{ name: "audio", bandwidth: variantBandwidth(undefined, audio).peak, codecs: AAC_LC_CODEC }] : []),
    ];
  }

  /** The master is stored: the stream is playable. */
  #onPlayable(entries: MasterEntries): void {
    const now = Date.now();
    const low = this.#hls instanceof LlPublisher;
    const masterKey = this.#hls instanceof LlPublisher ? this.#hls.llMasterKey : this.masterKey;
    const playbackUrl = this.#deps.publicUrl(masterKey);
    this.#log.info("stream is live", { playbackUrl, streamUrl: this.#deps.publicUrl(low ? this.lowLatencyAliasKey : this.aliasKey), sincePublishMs: now - this.#publishAt, lowLatency: low });
    this.emit("live", { playbackUrl, sincePublishMs: now - this.#publishAt, firstSegmentMs: (this.#firstSegmentAt ?? now) - this.#publishAt, lowLatency: low });
    this.#liveEvent = this.#emitEvent("stream.live", {
      streamId: this.streamId,
      roomId: this.#roomId,
      nodeId: this.#deps.settings.nodeId,
      playbackUrl,
      // Storage keys beside the URLs: the edge builds each viewer's playback URL (public or signed) from them.
      broadcastId: this.broadcastId,
      masterKey,
      renditions: this.#renditions(entries),
      ...(low ? { latency: "low" as const } : {}),
    });
  }

  /** Ends the stream: ENDLIST on every live playlist, the VOD playlists, stream.ended and media.ready. Idempotent. */
  end(reason: EndReason): Promise<void> {
    this.#ending ??= this.#end(reason);
    return this.#ending;
  }

  async #end(reason: EndReason): Promise<void> {
    clearTimeout(this.#graceTimer);
    this.#setState("ending");
    // FFmpeg stopped (SIGINT: it closes the segment in progress) and its last segments handed over. After the
    // broadcaster left, a run still encoding what it received is left to finish (within MEDIA_DRAIN_MAX_S).
    await this.#transcoder?.close({ drain: reason === "publisher-left" });
    const result = (await this.#hls?.finish({ vod: this.recorded })) ?? { segments: 0, durationS: 0, vodKey: undefined };
    await this.#liveEvent;
    const { segments, durationS } = result;
    const vodUrl = result.vodKey ? this.#deps.publicUrl(result.vodKey) : undefined;
    this.#setState("ended");
    this.#deps.metrics.streamEnded(this.streamId, reason);
    this.#log.info("stream ended", { reason, durationS, segments, vodUrl });
    this.emit("ended", { reason, durationS, vodUrl, segments });
    await this.#emitEvent("stream.ended", { streamId: this.streamId, roomId: this.#roomId, nodeId: this.#deps.settings.nodeId, durationS, reason, broadcastId: this.broadcastId, ...(vodUrl ? { vodUrl, vodKey: result.vodKey } : {}) });
    if (vodUrl) {
      const owner = this.claims.sub && checkUserId(this.claims.sub).ok ? this.claims.sub : undefined;
      await this.#emitEvent("media.ready", { mediaId: this.broadcastId, streamId: this.streamId, roomId: this.#roomId, ownerId: owner, playbackUrl: vodUrl, playlistKey: result.vodKey, durationS });
    }
    // The broadcast is over for the whole fleet: nothing left to continue, and the stream free for any node.
    if (this.#fleet && !this.#fleet.lease.lost) {
      await this.#fleet.broadcasts.delete(this.streamId, this.broadcastId).catch((error: unknown) => this.#log.warn("broadcast state not removed (another node will end it again when it finds it)", { error }));
      await this.#fleet.lease.release();
    }
    // Segments the closed uploader refused are in its journal, which recover() replays from these very files:
    // keep the work dir then (and while any upload is still pending at shutdown, as it may be one of ours).
    // (Pending counts every stream's uploads, so it only decides at node shutdown, when the uploader is closing.)
    const pending = reason === "node-shutdown" ? this.#deps.uploader.stats().pending : 0;
    if (this.#hls?.uploadsKept || pending > 0) {
      this.#log.warn("uploads not stored; local files kept for recovery", { dir: this.#workRoot, pending });
      return;
    }
    // Everything is stored (uploads resolved), so what is left locally is FFmpeg's own playlists.
    await rm(this.#workRoot, { recursive: true, force: true }).catch(() => {});
  }

  /**
   * Draining: stop carrying this broadcast without ending it. The broadcaster is disconnected, FFmpeg closes the
   * segment in progress, everything encoded is stored and listed, the lease is released; the broadcast's state
   * stays, so the broadcaster's reconnect continues it on another node (after a discontinuity).
   */
  handOff(): Promise<void> {
    return this.#leave("handed-off");
  }

  #leave(reason: LeaveReason): Promise<void> {
    if (this.#ending) return this.#ending;
    this.#left = reason;
    this.#ending = (async () => {
      clearTimeout(this.#graceTimer);
      this.#setState("ending");
      this.#log.warn(reason === "handed-off" ? "handing the broadcast over: the broadcaster's reconnect continues it on another node" : "stream lease lost: another node carries this stream now; stopping without writing more", { reason });
      this.#deps.ingest.disconnect(this.#publisher);
      // Fencing and settling are the classic publisher's: a low-latency broadcast is not continued by another node.
      const classic = this.#hls instanceof HlsPublisher ? this.#hls : undefined;
      if (reason === "lease-lost") classic?.fence();
      await this.#transcoder?.close();
      if (reason === "handed-off") await classic?.settle();
      await this.#liveEvent;
      if (reason === "handed-off") await this.#fleet?.lease.release();
      const segments = Object.values(classic?.segmentCounts() ?? {})[0] ?? 0;
      this.#setState("ended");
      this.#deps.metrics.streamEnded(this.streamId, reason);
      this.emit("ended", { reason, durationS: (Date.now() - this.#startedAt) / 1000, vodUrl: undefined, segments });
      if (!this.#hls?.uploadsKept) await rm(this.#workRoot, { recursive: true, force: true }).catch(() => {});
    })();
    return this.#ending;
  }

  /** Records the broadcast for the fleet, so another node can continue (or end) it if this one dies. */
  async #saveState(variants: string[]): Promise<void> {
    const fleet = this.#fleet;
    if (!fleet) return;
    const s = this.#deps.settings;
    const owner = this.claims.sub && checkUserId(this.claims.sub).ok ? this.claims.sub : undefined;
    const prior = this.#continueFrom?.state;
    try {
      await fleet.broadcasts.put({
        v: 1,
        streamId: this.streamId,
        broadcastId: this.broadcastId,
        keyBase: this.keyBase,
        aliasKey: this.aliasKey,
        app: this.app,
        nodeId: s.nodeId,
        startedAt: this.#startedAt,
        record: this.recorded,
        ...(this.#roomId ?? prior?.roomId ? { roomId: this.#roomId ?? prior?.roomId } : {}),
        ...(owner ?? prior?.ownerId ? { ownerId: owner ?? prior?.ownerId } : {}),
        segmentS: s.segmentS,
        liveWindow: s.liveWindow,
        journalPage: fleet.journalPage,
        variants: [...new Set([...(prior?.variants ?? []), ...variants])],
      });
    } catch (error) {
      this.#log.warn("broadcast state not recorded in NATS KV: if this node dies, another one starts a new broadcast instead of continuing this one", { error });
    }
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

/**
 * The frame rate a low-latency ladder is encoded at: the source's, when it says one (rounded to a whole rate,
 * 29.97 -> 30, so parts are whole frames of a round duration), at most 60; 30 when it does not.
 */
export function lowLatencyFps(sourceFps: number | undefined): number {
  if (sourceFps === undefined || !Number.isFinite(sourceFps) || sourceFps <= 0) return 30;
  return Math.min(60, Math.max(1, Math.round(sourceFps)));
}
