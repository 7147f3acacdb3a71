// Publishes an HLS ladder that an encoder writes into local folders: segments are stored in order as the encoder
// completes them, then each variant's playlist (ours, see playlists.ts) after the segments it lists, the master
// after every variant playlist, and at the end ENDLIST and the VOD playlists. It knows nothing of RTMP or of
// live sessions: anything that writes `<dir>/<variant>/index.m3u8` plus its segments can drive it (the live
// transcoder's FFmpeg runs, a VOD encode of a file).
//
// A run is one encoder process writing into one folder; several runs continue the same playlists, each after
// an EXT-X-DISCONTINUITY. Runs may overlap in time (a new run starts while the previous one still encodes what
// it received): a run's segments are stored as they come but enter the playlists only after every segment of
// the runs before it. Completed segments are found by reading the encoder's own playlist (a segment is
// listed there only once its file is closed) when the encoder says it is writing that playlist (`written()`),
// and once more when the run ends.
//
// Invariants:
// - a segment is stored before any playlist that lists it; a variant's segments enter its playlist in encoder
//   order even though uploads finish in any order;
// - the master (and its aliases) only after every variant playlist it lists is stored;
// - a segment that cannot be stored is skipped and the next one is marked discontinuous (never listed unstored).

import { EventEmitter } from "node:events";
import { readFile, unlink } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import type { Logger } from "../log.ts";
import { UploaderClosedError } from "../storage/errors.ts";
import type { Uploader } from "../storage/types.ts";
import type { Variant } from "../transcode/args.ts";
import { journalPageKey, renderJournalPage } from "./journal.ts";
import { CACHE, type MasterEntries, masterEntries, parseFfmpegMasterCodecs, parseFfmpegPlaylist, type PlaylistSegment, prefixEntries, renderMasterPlaylist, renderMediaPlaylist } from "./playlists.ts";

export interface HlsPublisherOptions {
  uploader: Uploader;
  /** every object goes under `<keyBase>/` (`<keyBase>/<variant>/...`, `<keyBase>/master.m3u8`) */
  keyBase: string;
  variants: readonly Variant[];
  /** the configured segment duration (TARGETDURATION is at least this) */
  segmentS: number;
  /** segments listed in a live playlist */
  liveWindow: number;
  /** `event`: the playlists list every segment from the first and say so (an upload playable while it encodes) */
  playlistKind?: "live" | "event";
  /** more masters listing the same variants under a URI prefix (a stable per-stream URL), stored after ours */
  aliases?: readonly { key: string; uriPrefix: string }[];
  /** the encoder's own master in a run's folder, read for the CODECS of copied (passthrough) video */
  sourceMaster?: string;
  /**
   * Segments already stored by whoever published this broadcast before (another node that died, journal.ts):
   * per variant name, in order. The playlists go on after them (media sequence counting them too); the first
   * run's first segment is marked discontinuous.
   */
  seed?: ReadonlyMap<string, readonly PlaylistSegment[]>;
  /** keep the segment journal (journal.ts) so another node can take the broadcast over: `pageSize` per page */
  journal?: { pageSize: number };
  log: Logger;
}

export interface HlsPublisherEvents {
  /** a segment and the variant playlist listing it are stored */
  segment: [{ variant: string; epoch: number; index: number; durationS: number; uploadMs: number; discontinuity: boolean }];
  /** the master (and its aliases) is stored: the ladder is playable */
  ready: [MasterEntries];
  /** something could not be stored (logged here; for metrics) */
  failed: [{ kind: "segment" | "playlist"; error: unknown }];
}

/** One encoder run as the publisher sees it: its number (0 = first) and the folder it writes into. */
export interface PublishRun {
  readonly epoch: number;
  readonly dir: string;
  /**
   * Wall-clock ms at which the broadcaster sent the run's first frame (its media time 0): segments are stamped
   * with EXT-X-PROGRAM-DATE-TIME from it. Absent: when the publisher heard of the run.
   */
  readonly startedAtMs?: number | undefined;
}

/** A broadcast's last segment shorter than this is merged into the one before it in the VOD playlist. */
export const MERGE_TAIL_S = 0.1;

export interface PublishResult {
  /** segments per variant (the first variant's) */
  segments: number;
  durationS: number;
  /** the VOD master's key when the recording's playlists were stored */
  vodKey: string | undefined;
}

interface VariantState {
  variant: Variant;
  segments: PlaylistSegment[];
  /** appends in encoder order even though uploads finish in any order */
  chain: Promise<void>;
  /** a segment was lost (upload gave up): the next one is marked discontinuous */
  gap: boolean;
  /** this variant's index.m3u8 is stored (the master may list it only then, or a player could get a 404) */
  playlistStored: boolean;
  /** shed from the ladder: no longer encoded nor listed in a master */
  dropped: boolean;
  /** local files of the last two stored segments, kept so a tiny last one can be merged into the one before */
  local: { uri: string; path: string }[];
  /** the journal page written last: the next live playlist waits for it (journal.ts says why) */
  pageWrite: Promise<void> | undefined;
}

interface RunVariant {
  state: VariantState;
  /** this run's segments entering the variant's playlist, in order, after the earlier runs' (see RunState.gate) */
  chain: Promise<void>;
  /** highest encoder playlist index already handed to upload */
  seen: number;
  /** init segment upload */
  init: Promise<void> | undefined;
  /** a read of the encoder's playlist was asked for (coalesced while one is under way) */
  wanted: boolean;
  scanning: Promise<void> | undefined;
  /** media seconds of this run's segments read so far (the next one's start) */
  elapsedS: number;
}

interface RunState {
  run: PublishRun;
  startedAtMs: number;
  /** resolves once every earlier run has ended and all its segments are in the playlists */
  gate: Promise<void>;
  /** resolves once this run has ended and all its segments are in the playlists (the next run's gate) */
  done: Promise<void>;
  markEnded: () => void;
  variants: Map<string, RunVariant>;
  ended: boolean;
}

// The encoder announces a playlist just before it moves the new version into place: if a read right after the
// cue finds nothing new yet, it is retried after these delays (then the next cue, or the run's end, catches up).
const SETTLE_RETRY_MS = [10, 20, 40, 80, 160, 320];

export class HlsPublisher extends EventEmitter<HlsPublisherEvents> {
  readonly #opts: HlsPublisherOptions;
  readonly #log: Logger;
  readonly #variants: VariantState[];
  readonly #runs = new Map<number, RunState>();
  /** the newest run's `done`: the next run's gate */
  #lastDone: Promise<void> = Promise.resolve();
  #lastRun: PublishRun | undefined;
  #master: Promise<void> | undefined;
  #ready = false;
  #uploadsKept = false;
  #fenced = false;

  constructor(opts: HlsPublisherOptions) {
    super();
    if (opts.variants.length === 0) throw new Error("HlsPublisher: no variants to publish");
    this.#opts = opts;
    this.#log = opts.log;
    this.#variants = opts.variants.map((variant) => {
      const seeded = [...(opts.seed?.get(variant.name) ?? [])];
      // The next segment after the seed starts a new encoder run on another node: it is discontinuous.
      return { variant, segments: seeded, chain: Promise.resolve(), gap: seeded.length > 0, playlistStored: false, dropped: false, local: [], pageWrite: undefined };
    });
  }

  /**
   * Stops every further write: playlists, masters, journal pages (segments already handed to the uploader may
   * still land, listed nowhere). For a node that lost the stream's lease: another node writes it now.
   */
  fence(): void {
    this.#fenced = true;
  }

  get fenced(): boolean {
    return this.#fenced;
  }

  /** Every segment handed over so far is stored and listed (or given up); no ENDLIST, nothing more written. */
  async settle(): Promise<void> {
    await this.#lastDone;
    await Promise.all(this.#variants.map((v) => v.chain));
    await Promise.all(this.#variants.map((v) => v.pageWrite));
    await this.#master?.catch(() => {});
  }

  /** segments listed per variant so far (the seed included) */
  segmentCounts(): Record<string, number> {
    return Object.fromEntries(this.#variants.map((v) => [v.variant.name, v.segments.length]));
  }

  get masterKey(): string {
    return `${this.#opts.keyBase}/master.m3u8`;
  }

  get vodKey(): string {
    return `${this.#opts.keyBase}/vod.m3u8`;
  }

  /** an upload was refused because the uploader closed: its local file is in the upload journal (keep the folder) */
  get uploadsKept(): boolean {
    return this.#uploadsKept;
  }

  /** the variants still published (not shed) */
  get activeVariants(): Variant[] {
    return this.#variants.filter((v) => !v.dropped).map((v) => v.variant);
  }

  /** A run is about to write into `run.dir` (the variants not dropped). */
  async begin(run: PublishRun): Promise<void> {
    const active = this.#variants.filter((state) => !state.dropped);
    const gate = this.#lastDone;
    const variants = new Map<string, RunVariant>(active.map((state) => [state.variant.name, { state, chain: gate, seen: -1, init: undefined, wanted: false, scanning: undefined, elapsedS: 0 }]));
    let markEnded!: () => void;
    const ended = new Promise<void>((r) => (markEnded = r));
    // Done: ended, and every segment chain of the run settled (which includes the gate, so earlier runs too).
    const done = ended.then(() => Promise.all([...variants.values()].map((v) => v.chain))).then(() => {});
    this.#lastDone = done;
    this.#runs.set(run.epoch, { run, startedAtMs: run.startedAtMs ?? Date.now(), gate, done, markEnded, variants, ended: false });
    this.#lastRun = run;
  }

  /**
   * Sheds variant `name` (call it between runs: the next run does not write it). Its live playlist ends
   * (ENDLIST), masters stop listing it, and the VOD lists only the variants kept to the end. Resolves when the
   * master without it is stored (at once if no master was stored yet). Returns the entries the master lists.
   */
  async drop(name: string): Promise<MasterEntries> {
    const v = this.#variants.find((x) => x.variant.name === name);
    if (!v || v.dropped) throw new Error(`HlsPublisher: no published variant ${name}`);
    if (this.#variants.filter((x) => !x.dropped && !x.variant.rendition).length <= 1 && !v.variant.rendition) throw new Error("HlsPublisher: cannot drop the last variant");
    v.dropped = true;
    // (Its segments still being encoded by a draining run are stored and listed after an ENDLIST-ed version.)
    if (v.segments.length > 0) await this.#uploadLivePlaylist(v, true).catch((error: unknown) => this.#failed("playlist", error));
    await this.#master?.catch(() => {});
    if (this.#ready) {
      const entries = await this.#masterEntries("index.m3u8");
      await this.#storeMasters(entries);
      return entries;
    }
    return this.#masterEntries("index.m3u8");
  }

  /**
   * The run is writing `path` (e.g. FFmpeg's `Opening '<dir>/<variant>/index.m3u8.tmp' for writing`): when it is
   * a variant's playlist, new segments may be listed there now. Anything else is ignored.
   */
  written(run: PublishRun, path: string): void {
    const r = this.#runs.get(run.epoch);
    if (!r || r.ended) return;
    const name = basename(path);
    if (name !== "index.m3u8" && name !== "index.m3u8.tmp") return;
    const v = r.variants.get(relative(r.run.dir, dirname(path)));
    if (v) void this.#scan(r, v);
  }

  /** The run's encoder is gone: everything it listed is handed to upload when this resolves. */
  async end(run: PublishRun): Promise<void> {
    const r = this.#runs.get(run.epoch);
    if (!r) return;
    r.ended = true;
    // One last read: the encoder lists its last segment as it exits.
    await Promise.all([...r.variants.values()].map((v) => this.#scan(r, v)));
    r.markEnded();
    this.#runs.delete(run.epoch);
  }

  /**
   * Resolves when everything handed to upload so far is stored or given up, without storing anything more
   * (for a job whose outputs are about to be removed: nothing of it may land after that).
   */
  async settled(): Promise<void> {
    await this.#lastDone;
    await Promise.all(this.#variants.map((v) => v.chain));
    await this.#master?.catch(() => {});
  }

  /**
   * The ladder is complete (every run ended): ENDLIST on the live playlists and, with `vod`, the VOD playlist of
   * every variant and a VOD master. Never throws: what cannot be stored is logged and reported.
   */
  async finish(opts: { vod: boolean }): Promise<PublishResult> {
    await this.#lastDone;
    await Promise.all(this.#variants.map((v) => v.chain));
    await this.#master;
    const active = this.#variants.filter((v) => !v.dropped);
    const first = active[0]!;
    const segments = first.segments.length;
    const durationS = Math.round(first.segments.reduce((t, s) => t + s.durationS, 0) * 1000) / 1000;
    let vodKey: string | undefined;
    try {
      if (segments > 0 && !this.#fenced) {
        await Promise.all(active.map((v) => this.#uploadLivePlaylist(v, true)));
        if (opts.vod) {
          const { uploader, keyBase, segmentS } = this.#opts;
          await Promise.all(
            active.map(async (v) =>
              uploader.uploadBody(`${keyBase}/${v.variant.name}/vod.m3u8`, renderMediaPlaylist(await this.#mergedTail(v), { targetS: segmentS, kind: "vod", ended: true }), { cacheControl: CACHE.segment }),
            ),
          );
          const vod = await this.#masterEntries("vod.m3u8");
          await uploader.uploadBody(this.vodKey, renderMasterPlaylist(vod.variants, vod.audio), { cacheControl: CACHE.segment });
          vodKey = this.vodKey;
        }
      }
    } catch (error) {
      this.#failed("playlist", error);
      this.#log.error("final playlists not stored", { error });
    }
    await Promise.all(this.#variants.flatMap((v) => v.local.splice(0).map((f) => unlink(f.path).catch(() => {}))));
    return { segments, durationS, vodKey };
  }

  /**
   * The variant's segments for the VOD playlist. An encoder may close a broadcast with a segment of a frame or
   * two (the audio rendition's last AAC frame, 0.02 s): when the last segment is shorter than MERGE_TAIL_S and
   * continues the one before it (same run), both are joined into one object (one fMP4 fragment after another is a
   * valid segment) listed instead of the two. When the files are gone, the list is left as it is.
   */
  async #mergedTail(v: VariantState): Promise<PlaylistSegment[]> {
    const list = v.segments;
    const last = list.at(-1);
    const prev = list.at(-2);
    if (!last || !prev || last.durationS >= MERGE_TAIL_S || last.discontinuity || last.map !== prev.map) return list;
    const files = v.local.map((f) => f.uri);
    if (files.at(-1) !== last.uri || files.at(-2) !== prev.uri) return list;
    try {
      const body = Buffer.concat(await Promise.all(v.local.slice(-2).map((f) => readFile(f.path))));
      // e<run>-<i>.m4s + e<run>-<i+1>.m4s -> e<run>-<i>-<i+1>.m4s (a name no segment of its own has)
      const uri = `${prev.uri.replace(/\.m4s$/, "")}-${last.uri.replace(/^e\d+-/, "")}`;
      await this.#opts.uploader.uploadBody(`${this.#opts.keyBase}/${v.variant.name}/${uri}`, body, { cacheControl: CACHE.segment });
      return [...list.slice(0, -2), { ...prev, uri, durationS: Math.round((prev.durationS + last.durationS) * 1e6) / 1e6 }];
    } catch (error) {
      this.#log.warn("last segment not merged into the one before it", { variant: v.variant.name, error });
      return list;
    }
  }

  /** Reads the run's playlist for `v` until nothing new is announced; concurrent asks are coalesced. */
  #scan(r: RunState, v: RunVariant): Promise<void> {
    v.wanted = true;
    v.scanning ??= (async () => {
      let miss = 0;
      while (v.wanted) {
        v.wanted = false;
        const found = await this.#read(r, v);
        if (found === 0 && !r.ended && miss < SETTLE_RETRY_MS.length) {
          await new Promise((resolve) => setTimeout(resolve, SETTLE_RETRY_MS[miss++]));
          v.wanted = true;
        } else if (found > 0) miss = 0;
      }
    })().finally(() => (v.scanning = undefined));
    return v.scanning;
  }

  /** Hands every segment the encoder listed since the last read to the uploader; returns how many. */
  async #read(r: RunState, v: RunVariant): Promise<number> {
    const name = v.state.variant.name;
    let text: string;
    try {
      text = await readFile(join(r.run.dir, name, "index.m3u8"), "utf8");
    } catch {
      return 0; // not written yet
    }
    // Only complete lines: the encoder may be rewriting the file as we read it.
    const { entries } = parseFfmpegPlaylist(text.slice(0, text.lastIndexOf("\n") + 1));
    let found = 0;
    for (const entry of entries) {
      if (entry.index <= v.seen || !entry.map) continue;
      const firstOfRun = v.seen < 0;
      v.seen = entry.index;
      found++;
      const programDateTimeMs = Math.round(r.startedAtMs + v.elapsedS * 1000);
      v.elapsedS += entry.durationS;
      this.#onSegment(r.run, v, entry.index, entry.uri, entry.map, entry.durationS, firstOfRun, programDateTimeMs);
    }
    return found;
  }

  #onSegment(run: PublishRun, rv: RunVariant, index: number, file: string, map: string, durationS: number, firstOfRun: boolean, programDateTimeMs: number): void {
    // Fenced: another node writes this broadcast now, and may use these very object names.
    if (this.#fenced) return;
    const { uploader, keyBase } = this.#opts;
    const v = rv.state;
    const name = v.variant.name;
    const dir = join(run.dir, name);
    const mapName = `e${run.epoch}-init.mp4`;
    const segName = `e${run.epoch}-${index}.m4s`;
    const started = Date.now();
    rv.init ??= uploader.upload(`${keyBase}/${name}/${mapName}`, join(dir, map), { cacheControl: CACHE.segment });
    // The segment's file is kept after upload until two newer ones are stored (#mergedTail may need it).
    const localPath = join(dir, file);
    const stored = Promise.all([rv.init, uploader.upload(`${keyBase}/${name}/${segName}`, localPath, { cacheControl: CACHE.segment, keepLocal: true })]);
    rv.chain = rv.chain
      .then(() => stored)
      .then(
        async () => {
          const uploadMs = Date.now() - started;
          const discontinuity = (firstOfRun && run.epoch > 0) || v.gap;
          v.gap = false;
          v.segments.push({ uri: segName, durationS, map: mapName, discontinuity, programDateTimeMs });
          v.local.push({ uri: segName, path: localPath });
          for (const old of v.local.splice(0, Math.max(0, v.local.length - 2))) void unlink(old.path).catch(() => {});
          // The page completed by an earlier segment is stored before this playlist (which may slide its
          // segments out of the window); a page completed by this segment, before the next playlist.
          const earlierPage = v.pageWrite;
          this.#maybeJournalPage(v);
          await earlierPage;
          await this.#uploadLivePlaylist(v, false);
          v.playlistStored = true;
          this.emit("segment", { variant: name, epoch: run.epoch, index, durationS, uploadMs, discontinuity });
          this.#maybeMaster(run);
        },
        (error: unknown) => {
          // Retrying could not help (local file gone, spool full, uploader closed): skip it, mark the gap.
          v.gap = true;
          this.#failed("segment", error);
          this.#log.error("segment not stored; skipped", { variant: name, epoch: run.epoch, index, error });
        },
      )
      .catch((error: unknown) => {
        this.#failed("playlist", error);
        this.#log.error("playlist not stored", { variant: name, error });
      });
    v.chain = Promise.all([v.chain, rv.chain]).then(() => {});
  }

  /** Stores the journal page `v`'s last segment completed, if it completed one. */
  #maybeJournalPage(v: VariantState): void {
    const size = this.#opts.journal?.pageSize;
    const n = v.segments.length;
    if (!size || n % size !== 0 || this.#fenced) return;
    const first = n - size;
    const body = renderJournalPage(first, v.segments.slice(first));
    v.pageWrite = this.#opts.uploader
      .uploadBody(journalPageKey(this.#opts.keyBase, v.variant.name, first / size), body, { cacheControl: CACHE.segment })
      .catch((error: unknown) => {
        this.#failed("playlist", error);
        this.#log.error("journal page not stored (a takeover would miss its segments)", { variant: v.variant.name, page: first / size, error });
      });
  }

  #uploadLivePlaylist(v: VariantState, ended: boolean): Promise<void> {
    if (this.#fenced) return Promise.resolve();
    const { uploader, keyBase, segmentS, liveWindow } = this.#opts;
    // A shed variant's playlist is over: a late segment of the run that was encoding it keeps the ENDLIST.
    const text = renderMediaPlaylist(v.segments, { targetS: segmentS, kind: this.#opts.playlistKind ?? "live", window: liveWindow, ended: ended || v.dropped });
    // While storage is down only the newest version of a live playlist matters: older queued ones are dropped.
    return uploader.uploadBody(`${keyBase}/${v.variant.name}/index.m3u8`, text, { cacheControl: CACHE.livePlaylist, replaceQueued: true });
  }

  #maybeMaster(run: PublishRun): void {
    if (this.#ready || this.#master || this.#variants.some((v) => !v.dropped && !v.playlistStored)) return;
    this.#master = (async () => {
      const entries = await this.#masterEntries("index.m3u8", run);
      await this.#storeMasters(entries);
      this.#ready = true;
      this.emit("ready", entries);
    })().catch((error: unknown) => {
      this.#master = undefined; // try again with the next segment
      this.#failed("playlist", error);
      this.#log.error("master playlist not stored", { error });
    });
  }

  /** Our master, then its aliases (after it: everything an alias lists is stored too). */
  async #storeMasters(entries: MasterEntries): Promise<void> {
    if (this.#fenced) return;
    const { uploader } = this.#opts;
    await uploader.uploadBody(this.masterKey, renderMasterPlaylist(entries.variants, entries.audio), { cacheControl: CACHE.livePlaylist, replaceQueued: true });
    for (const alias of this.#opts.aliases ?? []) {
      const prefixed = prefixEntries(entries, alias.uriPrefix);
      await uploader.uploadBody(alias.key, renderMasterPlaylist(prefixed.variants, prefixed.audio), { cacheControl: CACHE.livePlaylist, replaceQueued: true });
    }
  }

  async #masterEntries(playlistName: string, run = this.#lastRun): Promise<MasterEntries> {
    const active = this.activeVariants;
    let codecs = new Map<string, string>();
    if (run && this.#opts.sourceMaster && active.some((v) => v.video?.mode === "copy")) {
      codecs = parseFfmpegMasterCodecs(await readFile(join(run.dir, this.#opts.sourceMaster), "utf8").catch(() => ""));
    }
    return masterEntries(active, playlistName, codecs);
  }

  #failed(kind: "segment" | "playlist", error: unknown): void {
    if (error instanceof UploaderClosedError) this.#uploadsKept = true;
    this.emit("failed", { kind, error });
  }
}
