// Cuts one rendition's fragmented MP4 (an encoder writing `-f mp4 -movflags empty_moov+default_base_moof+
// frag_keyframe` to a pipe) into what LL-HLS lists: the init segment, parts, and segments made of whole parts.
//
// - a part is one fragment (moof + mdat, with any box that came before it): the encoder is told to fragment
//   at the part duration, so parts are cut exactly where the encoder flushed, and each is complete on arrival;
// - a part is independent when its first sample (of the main track: video if there is one) is a sync sample;
// - a segment is a run of whole parts; a new one begins at an independent part once the current one holds
//   about the segment duration (the encoder forces a keyframe at every segment boundary), and its bytes are the
//   concatenation of its parts' bytes, so the segment and its parts carry the same samples with the same timing;
// - times are media seconds from the run's first part; the publisher maps them onto the wall clock.
//
// Pure: bytes in, events out, no I/O or timers (packager.test.ts feeds it built bytes; the FFmpeg test real ones).

import { BoxSplitter, concatBytes, parseFragment, parseInit, type TrackInfo, type TrackRun } from "./fmp4.ts";

export interface PackagerOptions {
  /** a segment ends at the first independent part once it holds at least about this many seconds */
  segmentS: number;
  /** PART-TARGET in seconds: a longer part is counted in `stats.overTarget` (it breaks the playlist's promise) */
  partTargetS: number;
}

export interface InitEvent {
  kind: "init";
  /** ftyp + moov: the EXT-X-MAP of every part and segment of the run */
  bytes: Uint8Array;
  tracks: TrackInfo[];
  /** the track whose timing defines part and segment durations (video when there is video) */
  main: TrackInfo;
}

export interface PartEvent {
  kind: "part";
  /** segment of the run this part belongs to (0 = the run's first) */
  segment: number;
  /** position of the part in its segment */
  index: number;
  /** part number in the run, counting across segments */
  seq: number;
  /** media seconds from the run's first part to this part's first sample */
  startS: number;
  durationS: number;
  /** media seconds from the run's first part to this part's last frame (its last sample's start) */
  lastFrameS: number;
  /** starts with a sync sample (INDEPENDENT=YES) */
  independent: boolean;
  bytes: Uint8Array;
}

export interface SegmentEvent {
  kind: "segment";
  segment: number;
  startS: number;
  durationS: number;
  /** how many parts it is made of */
  parts: number;
  /** the concatenation of its parts' bytes */
  bytes: Uint8Array;
}

export type PackagerEvent = InitEvent | PartEvent | SegmentEvent;

export interface PackagerStats {
  parts: number;
  segments: number;
  /** parts longer than PART-TARGET */
  overTarget: number;
}

interface OpenSegment {
  segment: number;
  startS: number;
  durationS: number;
  parts: Uint8Array[];
}

export class Packager {
  readonly #opts: PackagerOptions;
  readonly #splitter = new BoxSplitter();
  #initBoxes: Uint8Array[] = [];
  #tracks: TrackInfo[] | undefined;
  #main: TrackInfo | undefined;
  /** boxes since the last part (a moof waiting for its mdat, and anything before it) */
  #pending: Uint8Array[] = [];
  #moof: Uint8Array | undefined;
  /** main-track decode time of the run's first part */
  #origin: number | undefined;
  #open: OpenSegment | undefined;
  #nextSegment = 0;
  #seq = 0;
  #ended = false;
  readonly stats: PackagerStats = { parts: 0, segments: 0, overTarget: 0 };

  constructor(opts: PackagerOptions) {
    if (!(opts.segmentS > 0) || !(opts.partTargetS > 0)) throw new Error("Packager: segmentS and partTargetS must be positive");
    this.#opts = opts;
  }

  get tracks(): TrackInfo[] | undefined {
    return this.#tracks;
  }

  /** Bytes from the encoder, in order; returns what they completed. Throws on a stream that is not fragmented MP4. */
  push(chunk: Uint8Array): PackagerEvent[] {
    if (this.#ended) throw new Error("Packager: push after end");
    const out: PackagerEvent[] = [];
    for (const b of this.#splitter.push(chunk)) {
      if (!this.#tracks) {
        this.#initBoxes.push(b.bytes);
        if (b.type === "moov") out.push(this.#init(b.bytes));
        else if (b.type === "moof" || b.type === "mdat") throw new Error(`Packager: '${b.type}' before the init segment's moov`);
        continue;
      }
      if (b.type === "moof") {
        if (this.#moof) throw new Error("Packager: two moofs without an mdat between them");
        this.#moof = b.bytes;
        this.#pending.push(b.bytes);
      } else if (b.type === "mdat") {
        if (!this.#moof) throw new Error("Packager: an mdat without its moof");
        this.#pending.push(b.bytes);
        out.push(...this.#part(this.#moof, concatBytes(this.#pending)));
        this.#moof = undefined;
        this.#pending = [];
      } else if (b.type === "moov" || b.type === "ftyp") {
        throw new Error(`Packager: a second '${b.type}' in one run (a new init needs a new run)`);
      } else {
        // styp, prft, sidx, free...: kept with the part they precede
        this.#pending.push(b.bytes);
      }
    }
    return out;
  }

  /** The encoder is done: its last segment closes (an unfinished fragment is dropped). */
  end(): PackagerEvent[] {
    if (this.#ended) return [];
    this.#ended = true;
    const out: PackagerEvent[] = [];
    if (this.#open) out.push(this.#close(this.#open));
    this.#open = undefined;
    return out;
  }

  #init(moov: Uint8Array): InitEvent {
    const tracks = parseInit(moov);
    const main = tracks.find((t) => t.kind === "vide") ?? tracks.find((t) => t.kind === "soun") ?? tracks[0]!;
    this.#tracks = tracks;
    this.#main = main;
    const bytes = concatBytes(this.#initBoxes);
    this.#initBoxes = [];
    return { kind: "init", bytes, tracks, main };
  }

  #part(moof: Uint8Array, bytes: Uint8Array): PackagerEvent[] {
    const runs = parseFragment(moof, this.#tracks!);
    const timing = this.#timing(runs);
    if (!timing) return []; // a fragment without samples carries nothing to play
    this.#origin ??= timing.start;
    const startS = (timing.start - this.#origin) / timing.timescale;
    const durationS = timing.duration / timing.timescale;
    const out: PackagerEvent[] = [];
    const open = this.#open;
    const boundary = open !== undefined && timing.independent && open.durationS >= this.#opts.segmentS - this.#opts.partTargetS / 2;
    if (open && boundary) out.push(this.#close(open));
    if (!this.#open) this.#open = { segment: this.#nextSegment++, startS, durationS: 0, parts: [] };
    const seg = this.#open;
    const lastFrameS = startS + (timing.duration - timing.last) / timing.timescale;
    const part: PartEvent = { kind: "part", segment: seg.segment, index: seg.parts.length, seq: this.#seq++, startS, durationS, lastFrameS, independent: timing.independent, bytes };
    seg.parts.push(bytes);
    seg.durationS += durationS;
    this.stats.parts++;
    if (durationS > this.#opts.partTargetS + 1e-9) this.stats.overTarget++;
    out.push(part);
    return out;
  }

  #close(seg: OpenSegment): SegmentEvent {
    this.#open = undefined;
    this.stats.segments++;
    return { kind: "segment", segment: seg.segment, startS: seg.startS, durationS: seg.durationS, parts: seg.parts.length, bytes: concatBytes(seg.parts) };
  }

  /** Start, duration and independence of a fragment, from its main track (or, lacking it there, any track with samples). */
  #timing(runs: TrackRun[]): { start: number; duration: number; last: number; timescale: number; independent: boolean } | undefined {
    const main = this.#main!;
    const run = runs.find((r) => r.trackId === main.id && r.sampleCount > 0);
    if (run) return { start: run.baseDecodeTime, duration: run.duration, last: run.lastSampleDuration, timescale: main.timescale, independent: run.startsWithSync };
    // Only other tracks in this fragment (the encoder's audio outlasting its video at the end): time it on the
    // main track's clock so media times stay on one timeline.
    const other = runs.find((r) => r.sampleCount > 0);
    const track = other && this.#tracks!.find((t) => t.id === other.trackId);
    if (!other || !track) return undefined;
    const scale = main.timescale / track.timescale;
    return { start: Math.round(other.baseDecodeTime * scale), duration: Math.round(other.duration * scale), last: Math.round(other.lastSampleDuration * scale), timescale: main.timescale, independent: false };
  }
}

/**
 * How a rendition is cut into parts, from what is known of its main track before the encoder starts: parts of a
 * whole number of frames (video) or AAC frames (audio only) closest to `partMs`. `fragmentUs` is what to tell
 * the encoder (`-frag_duration`): just under the part, so a fragment closes on the frame that completes it, not
 * one frame later, while timestamps jittering by a millisecond (RTMP's resolution) still land on the same frame.
 * `partTargetS` is PART-TARGET: the part, rounded up to the millisecond, plus room for that jitter.
 */
export function partPlan(main: { kind: "video"; fps: number } | { kind: "audio"; sampleRate: number }, partMs: number): { frames: number; partS: number; fragmentUs: number; partTargetS: number } {
  const frameS = main.kind === "video" ? 1 / main.fps : 1024 / main.sampleRate;
  const frames = Math.max(1, Math.round(partMs / 1000 / frameS));
  const partS = frames * frameS;
  const fragmentUs = Math.round((partS - Math.min(0.003, frameS / 4)) * 1e6);
  const partTargetS = Math.ceil((partS + Math.max(0.002, partS * 0.01)) * 1000) / 1000;
  return { frames, partS, fragmentUs, partTargetS };
}
