// Just enough ISO-BMFF (fragmented MP4) to cut an encoder's fragmented output into HLS parts: a top-level box
// splitter that takes bytes as they arrive from a pipe, the init segment's tracks (timescales, default sample
// values), and per fragment each track's start time, sample count, duration and whether its first sample is a
// sync sample. Pure: no I/O, tested on bytes (fmp4.test.ts) and on real FFmpeg output.

/** A whole top-level box: its four-character type and its bytes (header included). */
export interface Box {
  type: string;
  bytes: Uint8Array;
}

/** A box too large for a live part: the stream is not what we asked the encoder for. */
export const MAX_BOX_BYTES = 64 * 1024 * 1024;

/**
 * Splits a byte stream into top-level boxes. Feed it whatever the pipe gives (any chunking); it returns the
 * boxes completed by that chunk, in order, and keeps the incomplete rest.
 */
export class BoxSplitter {
  #chunks: Uint8Array[] = [];
  #buffered = 0;

  push(chunk: Uint8Array): Box[] {
    if (chunk.byteLength > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.byteLength;
    }
    const out: Box[] = [];
    for (;;) {
      if (this.#buffered < 8) break;
      const head = this.#peek(16);
      const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
      let size = view.getUint32(0);
      const type = fourcc(head, 4);
      if (size === 1) {
        if (head.byteLength < 16) break;
        const big = view.getBigUint64(8);
        if (big > BigInt(MAX_BOX_BYTES)) throw new Error(`fmp4: box '${type}' of ${big} bytes is larger than a live part can be`);
        size = Number(big);
      } else if (size === 0) {
        // "to the end of the file": never written by a fragmenting muxer on a pipe
        throw new Error(`fmp4: box '${type}' runs to the end of the stream; the encoder is not writing fragments`);
      }
      if (size < 8) throw new Error(`fmp4: box '${type}' declares ${size} bytes`);
      if (size > MAX_BOX_BYTES) throw new Error(`fmp4: box '${type}' of ${size} bytes is larger than a live part can be`);
      if (this.#buffered < size) break;
      out.push({ type, bytes: this.#take(size) });
    }
    return out;
  }

  /** bytes received that do not make a whole box yet */
  get pending(): number {
    return this.#buffered;
  }

  #peek(n: number): Uint8Array {
    const first = this.#chunks[0]!;
    if (first.byteLength >= n || this.#chunks.length === 1) return first.subarray(0, Math.min(n, first.byteLength));
    return concatBytes(this.#chunks).subarray(0, n);
  }

  #take(n: number): Uint8Array {
    const first = this.#chunks[0]!;
    let out: Uint8Array;
    if (first.byteLength >= n) {
      out = first.subarray(0, n);
      if (first.byteLength === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      const all = concatBytes(this.#chunks);
      out = all.subarray(0, n);
      this.#chunks = all.byteLength > n ? [all.subarray(n)] : [];
    }
    this.#buffered -= n;
    // A copy, so a part never pins the pipe's whole chunk in memory.
    return out.slice();
  }
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function fourcc(b: Uint8Array, at: number): string {
  return String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!);
}

/** The child boxes inside a container box's payload (`from` skips the header, and version/flags for full boxes). */
export function children(box: Uint8Array, from = 8): Box[] {
  const out: Box[] = [];
  const view = new DataView(box.buffer, box.byteOffset, box.byteLength);
  let at = from;
  while (at + 8 <= box.byteLength) {
    let size = view.getUint32(at);
    const type = fourcc(box, at + 4);
    if (size === 1) {
      if (at + 16 > box.byteLength) throw new Error(`fmp4: truncated box '${type}'`);
      size = Number(view.getBigUint64(at + 8));
    } else if (size === 0) size = box.byteLength - at;
    if (size < 8 || at + size > box.byteLength) throw new Error(`fmp4: box '${type}' overruns its parent`);
    out.push({ type, bytes: box.subarray(at, at + size) });
    at += size;
  }
  return out;
}

function child(box: Uint8Array, type: string, from = 8): Uint8Array | undefined {
  return children(box, from).find((c) => c.type === type)?.bytes;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** A track of the init segment. */
export interface TrackInfo {
  id: number;
  /** `vide`, `soun`, ... (the handler type) */
  kind: string;
  timescale: number;
  defaultSampleDuration: number;
  defaultSampleFlags: number;
}

/** Tracks described by an init segment's `moov` (its `trak`s, and `mvex/trex` defaults). */
export function parseInit(moov: Uint8Array): TrackInfo[] {
  const tracks: TrackInfo[] = [];
  const defaults = new Map<number, { duration: number; flags: number }>();
  const mvex = child(moov, "mvex");
  if (mvex) {
    for (const trex of children(mvex).filter((c) => c.type === "trex")) {
      const v = view(trex.bytes);
      defaults.set(v.getUint32(12), { duration: v.getUint32(20), flags: v.getUint32(28) });
    }
  }
  for (const trak of children(moov).filter((c) => c.type === "trak")) {
    const tkhd = child(trak.bytes, "tkhd");
    const mdia = child(trak.bytes, "mdia");
    const mdhd = mdia && child(mdia, "mdhd");
    const hdlr = mdia && child(mdia, "hdlr");
    if (!tkhd || !mdhd || !hdlr) throw new Error("fmp4: a trak lacks tkhd, mdhd or hdlr");
    const tv = view(tkhd);
    const id = tkhd[8] === 1 ? tv.getUint32(28) : tv.getUint32(20);
    const mv = view(mdhd);
    const timescale = mdhd[8] === 1 ? mv.getUint32(28) : mv.getUint32(20);
    const kind = fourcc(hdlr, 16);
    const d = defaults.get(id);
    tracks.push({ id, kind, timescale, defaultSampleDuration: d?.duration ?? 0, defaultSampleFlags: d?.flags ?? 0 });
  }
  if (tracks.length === 0) throw new Error("fmp4: the init segment has no tracks");
  return tracks;
}

/** What one track holds in one fragment (`moof`). */
export interface TrackRun {
  trackId: number;
  /** tfdt: decode time of the first sample, in the track's timescale */
  baseDecodeTime: number;
  sampleCount: number;
  /** sum of the sample durations, in the track's timescale */
  duration: number;
  /** the last sample's duration (its start is baseDecodeTime + duration - this) */
  lastSampleDuration: number;
  /** the first sample is a sync sample (a keyframe; every audio sample is one) */
  startsWithSync: boolean;
}

/** `sample_is_non_sync_sample` in ISO-BMFF sample flags. */
const NON_SYNC = 0x00010000;

/** Each track's run in a `moof` (tfhd, tfdt, trun), with sample defaults from the init segment. */
export function parseFragment(moof: Uint8Array, tracks: readonly TrackInfo[]): TrackRun[] {
  const out: TrackRun[] = [];
  for (const traf of children(moof).filter((c) => c.type === "traf")) {
    const boxes = children(traf.bytes);
    const tfhd = boxes.find((b) => b.type === "tfhd")?.bytes;
    if (!tfhd) throw new Error("fmp4: a traf has no tfhd");
    const hv = view(tfhd);
    const hflags = hv.getUint32(8) & 0xffffff;
    const trackId = hv.getUint32(12);
    const track = tracks.find((t) => t.id === trackId);
    let at = 16;
    if (hflags & 0x01) at += 8; // base_data_offset
    if (hflags & 0x02) at += 4; // sample_description_index
    let defaultDuration = track?.defaultSampleDuration ?? 0;
    let defaultFlags = track?.defaultSampleFlags ?? 0;
    if (hflags & 0x08) {
      defaultDuration = hv.getUint32(at);
      at += 4;
    }
    if (hflags & 0x10) at += 4; // default_sample_size
    if (hflags & 0x20) defaultFlags = hv.getUint32(at);
    const tfdt = boxes.find((b) => b.type === "tfdt")?.bytes;
    let baseDecodeTime = 0;
    if (tfdt) {
      const dv = view(tfdt);
      baseDecodeTime = tfdt[8] === 1 ? Number(dv.getBigUint64(12)) : dv.getUint32(12);
    }
    let sampleCount = 0;
    let duration = 0;
    let firstFlags: number | undefined;
    let lastDuration = 0;
    for (const trun of boxes.filter((b) => b.type === "trun")) {
      const rv = view(trun.bytes);
      const flags = rv.getUint32(8) & 0xffffff;
      const count = rv.getUint32(12);
      let p = 16;
      if (flags & 0x01) p += 4; // data_offset
      let firstSampleFlags: number | undefined;
      if (flags & 0x04) {
        firstSampleFlags = rv.getUint32(p);
        p += 4;
      }
      const per = ((flags & 0x100 ? 1 : 0) + (flags & 0x200 ? 1 : 0) + (flags & 0x400 ? 1 : 0) + (flags & 0x800 ? 1 : 0)) * 4;
      if (p + per * count > trun.bytes.byteLength) throw new Error("fmp4: trun overruns its box");
      for (let i = 0; i < count; i++) {
        let q = p + i * per;
        let d = defaultDuration;
        if (flags & 0x100) {
          d = rv.getUint32(q);
          q += 4;
        }
        if (flags & 0x200) q += 4;
        let f = i === 0 && firstSampleFlags !== undefined ? firstSampleFlags : defaultFlags;
        if (flags & 0x400) {
          const own = rv.getUint32(q);
          if (!(i === 0 && firstSampleFlags !== undefined)) f = own;
        }
        if (sampleCount === 0 && i === 0) firstFlags = f;
        duration += d;
        lastDuration = d;
      }
      sampleCount += count;
    }
    out.push({ trackId, baseDecodeTime, sampleCount, duration, lastSampleDuration: lastDuration, startsWithSync: sampleCount > 0 && firstFlags !== undefined && (firstFlags & NON_SYNC) === 0 });
  }
  return out;
}
