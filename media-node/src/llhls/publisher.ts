// Publishes a low-latency broadcast from its encoder runs' pipes: each rendition's fragmented MP4 goes through a
// Packager, and what it cuts is stored and then announced to the edge, which lists it in the LL-HLS playlists:
//
//   <keyBase>/<rendition>/e<run>-init.mp4      init segment of a run (EXT-X-MAP)
//   <keyBase>/<rendition>/part<n>.m4s          parts, numbered across the broadcast (the preload hint names the
//                                              next one before anyone knows which segment it will belong to)
//   <keyBase>/<rendition>/seg<msn>.m4s         segments: the concatenation of their parts
//   <keyBase>/<rendition>/index.m3u8           the classic playlist of the same segments (CDN path, players
//                                              without LL-HLS), stored after each segment it lists
//   <keyBase>/master.m3u8, <alias>/live.m3u8   classic masters, once every rendition has a segment
//   <keyBase>/master-ll.m3u8, live-ll.m3u8     LL masters (renditions at `<rendition>/ll.m3u8`, which the edge's
//                                              object serves), once the edge has every rendition's first part
//
// Invariants:
// - nothing is announced (or listed in a classic playlist) before it is stored: a part is announced only once its
//   own bytes and its init segment are stored;
// - a rendition's announcements leave in the order the packager cut them (uploads finish in any order), so the
//   edge sees a segment's parts in order and the segment's end before the next segment's first part;
// - runs follow each other (an encoder restart continues the same playlists after a discontinuity): a run's
//   media sequence numbers and part numbers start where the previous run's ended.

import { EventEmitter } from "node:events";
import type { Readable } from "node:stream";
import { llPartUri, llSegmentUri, type LlUpdate } from "../../../shared/llhls/announce.ts";
import { CACHE, masterEntries, type MasterEntries, type PlaylistSegment, prefixEntries, renderMasterPlaylist, renderMediaPlaylist } from "../hls/playlists.ts";
import type { PublishResult, PublishRun } from "../hls/publisher.ts";
import type { Logger } from "../log.ts";
import { UploaderClosedError } from "../storage/errors.ts";
import type { Uploader } from "../storage/types.ts";
import type { Variant } from "../transcode/args.ts";
import type { AnnounceSink } from "./announcer.ts";
import { Packager, type PackagerEvent } from "./packager.ts";

export const LL_MASTER = "master-ll.m3u8";
/** How long the end of a broadcast waits for the edge to take its ENDLIST before the recording is finished anyway. */
export const END_ANNOUNCE_WAIT_MS = 5000;

export interface LlPublisherOptions {
  uploader: Uploader;
  /** `<prefix>/<streamId>/<broadcastId>` */
  keyBase: string;
  /** the renditions, in the encoder's pipe order */
  variants: readonly Variant[];
  segmentS: number;
  /** PART-TARGET of every rendition */
  partTargetS: number;
  /** segments listed in live playlists */
  liveWindow: number;
  /** stable per-stream masters pointing into this broadcast (`live.m3u8`, `live-ll.m3u8`), stored after ours */
  aliases: { classic: string; low: string; uriPrefix: string };
  announce: AnnounceSink;
  log: Logger;
}

export interface LlPublisherEvents {
  /** a part was announced: `lagMs` from its last frame's ingest to the edge taking it (listing it) */
  part: [{ variant: string; msn: number; index: number; durationS: number; independent: boolean; storeMs: number; lagMs: number }];
  /** a segment and the classic playlist listing it are stored (same shape as the classic publisher's) */
  segment: [{ variant: string; epoch: number; index: number; durationS: number; uploadMs: number; discontinuity: boolean }];
  /** the LL masters are stored and the edge lists every rendition: the stream plays */
  ready: [MasterEntries];
  failed: [{ kind: "segment" | "playlist"; error: unknown }];
}

interface VariantState {
  variant: Variant;
  /** segments for the classic playlist */
  segments: PlaylistSegment[];
  nextMsn: number;
  nextPartId: number;
  /** announcements (and classic listings) in packager order */
  chain: Promise<void>;
  /** something of it could not be stored: nothing more is published for it (see #fail) */
  failed: boolean;
  firstPartAnnounced: boolean;
  classicStored: boolean;
  ended: boolean;
}

interface RunVariant {
  state: VariantState;
  packager: Packager;
  msnBase: number;
  partBase: number;
  map: string;
  init: Promise<void> | undefined;
  /** the pipe ended and the packager's last events were handled */
  drained: Promise<void>;
  drain: () => void;
  /** segment -> program date time of its first part (unix ms) */
  pdt: Map<number, number>;
  firstSegmentOfRun: number | undefined;
}

interface RunState {
  run: PublishRun;
  startedAtMs: number;
  variants: RunVariant[];
  attached: boolean;
}

export class LlPublisher extends EventEmitter<LlPublisherEvents> {
  readonly #opts: LlPublisherOptions;
  readonly #log: Logger;
  readonly #variants: VariantState[];
  readonly #runs = new Map<number, RunState>();
  #started: Promise<void> | undefined;
  #llMaster: Promise<void> | undefined;
  #classicMaster: Promise<void> | undefined;
  #ready = false;
  #uploadsKept = false;

  constructor(opts: LlPublisherOptions) {
    super();
    if (opts.variants.length === 0) throw new Error("LlPublisher: no variants to publish");
    this.#opts = opts;
    this.#log = opts.log;
    this.#variants = opts.variants.map((variant) => ({ variant, segments: [], nextMsn: 0, nextPartId: 0, chain: Promise.resolve(), failed: false, firstPartAnnounced: false, classicStored: false, ended: false }));
  }

  get masterKey(): string {
    return `${this.#opts.keyBase}/master.m3u8`;
  }

  get llMasterKey(): string {
    return `${this.#opts.keyBase}/${LL_MASTER}`;
  }

  get vodKey(): string {
    return `${this.#opts.keyBase}/vod.m3u8`;
  }

  get uploadsKept(): boolean {
    return this.#uploadsKept;
  }

  get activeVariants(): Variant[] {
    return this.#variants.map((v) => v.variant);
  }

  /** A run is about to start: its packagers exist before its pipes do. */
  async begin(run: PublishRun): Promise<void> {
    this.#started ??= this.#opts.announce
      .send([
        {
          type: "start",
          segmentTargetS: Math.max(1, Math.ceil(this.#opts.segmentS)),
          windowSegments: Math.max(3, this.#opts.liveWindow),
          renditions: this.#variants.map((v) => ({ name: v.variant.name, partTargetS: this.#opts.partTargetS, bandwidth: masterEntries([v.variant], "ll.m3u8").variants[0]?.bandwidth })),
        },
      ])
      .catch((error: unknown) => this.#log.error("the edge did not take the broadcast's start", { error }));
    const variants = this.#variants.map((state): RunVariant => {
      let drain!: () => void;
      const drained = new Promise<void>((r) => (drain = r));
      return {
        state,
        packager: new Packager({ segmentS: this.#opts.segmentS, partTargetS: this.#opts.partTargetS }),
        msnBase: state.nextMsn,
        partBase: state.nextPartId,
        map: `e${run.epoch}-init.mp4`,
        init: undefined,
        drained,
        drain,
        pdt: new Map(),
        firstSegmentOfRun: undefined,
      };
    });
    this.#runs.set(run.epoch, { run, startedAtMs: run.startedAtMs ?? Date.now(), variants, attached: false });
  }

  /** The run's pipes, in the plan's order (one per variant). */
  attach(run: PublishRun, outputs: Readable[]): void {
    const r = this.#runs.get(run.epoch);
    if (!r || r.attached) return;
    r.attached = true;
    r.variants.forEach((rv, i) => {
      const pipe = outputs[i];
      if (!pipe) return rv.drain();
      let failed = false;
      pipe.on("data", (chunk: Buffer) => {
        if (failed) return;
        try {
          this.#handle(r, rv, rv.packager.push(chunk));
        } catch (error) {
          failed = true;
          this.#log.error("the encoder's output is not fragmented MP4 as expected; this rendition's run is not published further", { variant: rv.state.variant.name, epoch: run.epoch, error });
        }
      });
      pipe.once("close", () => {
        if (!failed) this.#handle(r, rv, rv.packager.end());
        rv.drain();
      });
      pipe.on("error", (error) => this.#log.warn("encoder pipe error", { variant: rv.state.variant.name, error }));
    });
  }

  /** Files are not how this publisher learns anything (the pipes are). */
  written(): void {}

  /** The run's process is gone: once its last segment is stored and announced, the next run may begin. */
  async end(run: PublishRun): Promise<void> {
    const r = this.#runs.get(run.epoch);
    if (!r) return;
    if (!r.attached) for (const rv of r.variants) rv.drain();
    await Promise.all(r.variants.map((rv) => rv.drained));
    await Promise.all(r.variants.map((rv) => rv.state.chain));
    for (const rv of r.variants) {
      rv.state.nextMsn = rv.msnBase + rv.packager.stats.segments;
      rv.state.nextPartId = rv.partBase + rv.packager.stats.parts;
      if (rv.packager.stats.overTarget > 0) this.#log.warn("parts longer than PART-TARGET", { variant: rv.state.variant.name, epoch: run.epoch, parts: rv.packager.stats.overTarget });
    }
    this.#runs.delete(run.epoch);
  }

  #handle(r: RunState, rv: RunVariant, events: PackagerEvent[]): void {
    for (const e of events) {
      if (e.kind === "init") this.#onInit(r, rv, e.bytes);
      else if (e.kind === "part") this.#onPart(r, rv, e);
      else this.#onSegment(r, rv, e);
    }
  }

  #key(v: VariantState, name: string): string {
    return `${this.#opts.keyBase}/${v.variant.name}/${name}`;
  }

  #onInit(_r: RunState, rv: RunVariant, bytes: Uint8Array): void {
    rv.init = this.#opts.uploader.uploadBody(this.#key(rv.state, rv.map), bytes, { cacheControl: CACHE.segment });
    rv.init.catch(() => {}); // observed through the parts that wait for it
  }

  #onPart(r: RunState, rv: RunVariant, e: Extract<PackagerEvent, { kind: "part" }>): void {
    const v = rv.state;
    const msn = rv.msnBase + e.segment;
    const id = rv.partBase + e.seq;
    const uri = llPartUri(id);
    const started = Date.now();
    if (e.index === 0) rv.pdt.set(e.segment, Math.round(r.startedAtMs + e.startS * 1000));
    rv.firstSegmentOfRun ??= e.segment;
    const stored = Promise.all([rv.init ?? Promise.reject(new Error("part before the init segment")), this.#opts.uploader.uploadBody(this.#key(v, uri), e.bytes, { cacheControl: CACHE.segment })]);
    stored.catch(() => {});
    // Wall-clock time at which the part's last frame reached the node (on the ingest timeline).
    const lastFrameMs = r.startedAtMs + e.lastFrameS * 1000;
    v.chain = v.chain.then(async () => {
      if (v.failed) return;
      try {
        await stored;
      } catch (error) {
        return this.#fail(v, error, { msn, part: e.index });
      }
      const update: LlUpdate = { type: "part", rendition: v.variant.name, msn, index: e.index, uri, durationS: round6(e.durationS), independent: e.independent, map: rv.map };
      if (e.index === 0) {
        update.programDateTimeMs = rv.pdt.get(e.segment)!;
        if (r.run.epoch > 0 && e.segment === rv.firstSegmentOfRun) update.discontinuity = true;
      }
      const storeMs = Date.now() - started;
      // In order with every other announcement of the broadcast; the chain moves on once it is queued.
      void this.#opts.announce.send([update]).then(
        () => {
          this.emit("part", { variant: v.variant.name, msn, index: e.index, durationS: e.durationS, independent: e.independent, storeMs, lagMs: Date.now() - lastFrameMs });
          if (!v.firstPartAnnounced) {
            v.firstPartAnnounced = true;
            this.#maybeLlMaster();
          }
        },
        (error: unknown) => this.#log.warn("part announcement not taken", { variant: v.variant.name, msn, index: e.index, error }),
      );
    });
  }

  #onSegment(r: RunState, rv: RunVariant, e: Extract<PackagerEvent, { kind: "segment" }>): void {
    const v = rv.state;
    const msn = rv.msnBase + e.segment;
    const uri = llSegmentUri(msn);
    const started = Date.now();
    const stored = this.#opts.uploader.uploadBody(this.#key(v, uri), e.bytes, { cacheControl: CACHE.segment });
    stored.catch(() => {});
    const discontinuity = r.run.epoch > 0 && e.segment === rv.firstSegmentOfRun;
    v.chain = v.chain.then(async () => {
      if (v.failed) return;
      try {
        await stored;
      } catch (error) {
        return this.#fail(v, error, { msn });
      }
      void this.#opts.announce.send([{ type: "segment", rendition: v.variant.name, msn, uri, durationS: round6(e.durationS) }]).catch((error: unknown) => this.#log.warn("segment announcement not taken", { variant: v.variant.name, msn, error }));
      v.segments.push({ uri, durationS: round6(e.durationS), map: rv.map, discontinuity, programDateTimeMs: rv.pdt.get(e.segment) });
      const uploadMs = Date.now() - started;
      void this.#storeClassic(v, false).then(
        () => {
          v.classicStored = true;
          this.emit("segment", { variant: v.variant.name, epoch: r.run.epoch, index: msn, durationS: e.durationS, uploadMs, discontinuity });
          this.#maybeClassicMaster();
        },
        (error: unknown) => this.#failed("playlist", error),
      );
    });
  }

  /**
   * Something of this rendition could not be stored even after the uploader's retries (it gave up: closed, or its
   * spool is full). Media sequence numbers leave no room for a hole, so the rendition ends here: the edge and the
   * classic playlist say ENDLIST, and players move to another rendition.
   */
  #fail(v: VariantState, error: unknown, at: { msn: number; part?: number }): void {
    v.failed = true;
    v.ended = true;
    this.#failed("segment", error);
    this.#log.error("low-latency rendition ends: an object could not be stored", { variant: v.variant.name, ...at, error });
    void this.#opts.announce.send([{ type: "end", renditions: [v.variant.name] }]).catch(() => {});
    if (v.segments.length > 0) void this.#storeClassic(v, true).catch((e: unknown) => this.#failed("playlist", e));
  }

  #storeClassic(v: VariantState, ended: boolean): Promise<void> {
    const { uploader, segmentS, liveWindow } = this.#opts;
    const text = renderMediaPlaylist(v.segments, { targetS: segmentS, kind: "live", window: liveWindow, ended: ended || v.ended });
    return uploader.uploadBody(this.#key(v, "index.m3u8"), text, { cacheControl: CACHE.livePlaylist, replaceQueued: true });
  }

  #entries(playlist: string): MasterEntries {
    return masterEntries(this.activeVariants, playlist);
  }

  #maybeLlMaster(): void {
    if (this.#llMaster || this.#variants.some((v) => !v.firstPartAnnounced)) return;
    const entries = this.#entries("ll.m3u8");
    this.#llMaster = this.#storeMasters(this.llMasterKey, this.#opts.aliases.low, entries).then(
      () => {
        this.#ready = true;
        this.emit("ready", entries);
      },
      (error: unknown) => {
        this.#llMaster = undefined;
        this.#failed("playlist", error);
      },
    );
  }

  #maybeClassicMaster(): void {
    if (this.#classicMaster || this.#variants.some((v) => !v.classicStored)) return;
    this.#classicMaster = this.#storeMasters(this.masterKey, this.#opts.aliases.classic, this.#entries("index.m3u8")).catch((error: unknown) => {
      this.#classicMaster = undefined;
      this.#failed("playlist", error);
    });
  }

  async #storeMasters(key: string, alias: string, entries: MasterEntries): Promise<void> {
    const { uploader } = this.#opts;
    await uploader.uploadBody(key, renderMasterPlaylist(entries.variants, entries.audio), { cacheControl: CACHE.livePlaylist, replaceQueued: true });
    const prefixed = prefixEntries(entries, this.#opts.aliases.uriPrefix);
    await uploader.uploadBody(alias, renderMasterPlaylist(prefixed.variants, prefixed.audio), { cacheControl: CACHE.livePlaylist, replaceQueued: true });
  }

  /** Every run ended: ENDLIST everywhere (the edge's playlists and the classic ones), then the VOD playlists. */
  async finish(opts: { vod: boolean }): Promise<PublishResult> {
    await Promise.all(this.#variants.map((v) => v.chain));
    for (const v of this.#variants) v.ended = true;
    // The end is told to the edge if it answers soon; an unreachable edge must not hold up the recording.
    let timer: NodeJS.Timeout | undefined;
    const told = await Promise.race([
      this.#opts.announce.send([{ type: "end" }]).then(
        () => true,
        (error: unknown) => (this.#log.warn("the edge did not take the broadcast's end", { error }), true),
      ),
      new Promise<false>((r) => (timer = setTimeout(() => r(false), END_ANNOUNCE_WAIT_MS))),
    ]);
    clearTimeout(timer);
    if (!told) this.#log.warn("the edge did not answer the broadcast's end in time; its low-latency playlists stay without ENDLIST until the broadcast is replaced", { waitedMs: END_ANNOUNCE_WAIT_MS });
    this.#opts.announce.close();
    await this.#llMaster;
    await this.#classicMaster;
    const first = this.#variants[0]!;
    const segments = first.segments.length;
    const durationS = Math.round(first.segments.reduce((t, s) => t + s.durationS, 0) * 1000) / 1000;
    let vodKey: string | undefined;
    try {
      if (segments > 0) {
        await Promise.all(this.#variants.map((v) => this.#storeClassic(v, true)));
        if (opts.vod) {
          const { uploader, segmentS } = this.#opts;
          await Promise.all(this.#variants.map((v) => uploader.uploadBody(this.#key(v, "vod.m3u8"), renderMediaPlaylist(v.segments, { targetS: segmentS, kind: "vod", ended: true }), { cacheControl: CACHE.segment })));
          const vod = this.#entries("vod.m3u8");
          await uploader.uploadBody(this.vodKey, renderMasterPlaylist(vod.variants, vod.audio), { cacheControl: CACHE.segment });
          vodKey = this.vodKey;
        }
      }
    } catch (error) {
      this.#failed("playlist", error);
      this.#log.error("final playlists not stored", { error });
    }
    return { segments, durationS, vodKey };
  }

  get ready(): boolean {
    return this.#ready;
  }

  #failed(kind: "segment" | "playlist", error: unknown): void {
    if (error instanceof UploaderClosedError) this.#uploadsKept = true;
    this.emit("failed", { kind, error });
  }
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
