// Builds small fragmented-MP4 byte streams for the packager's tests (no encoder needed): an init segment with
// tracks, and fragments whose moof says what the test wants (start time, sample durations, sync flags).

export function box(type: string, ...payload: Uint8Array[]): Uint8Array {
  const size = 8 + payload.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, size);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  let at = 8;
  for (const p of payload) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

export function u32(...xs: number[]): Uint8Array {
  const out = new Uint8Array(xs.length * 4);
  const v = new DataView(out.buffer);
  xs.forEach((x, i) => v.setUint32(i * 4, x >>> 0));
  return out;
}

export function u64(x: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(x));
  return out;
}

const text = (s: string) => new Uint8Array([...s].map((c) => c.charCodeAt(0)));

/** version/flags word of a full box */
const vf = (version: number, flags: number) => u32(((version & 0xff) << 24) | (flags & 0xffffff));

export interface TestTrack {
  id: number;
  kind: "vide" | "soun";
  timescale: number;
}

export function initSegment(tracks: TestTrack[], opts: { mdhdVersion?: 0 | 1 } = {}): Uint8Array {
  const ftyp = box("ftyp", text("iso5"), u32(512), text("iso5iso6mp41"));
  const traks = tracks.map((t) => {
    const tkhd = box("tkhd", vf(0, 3), u32(0, 0, t.id, 0, 0), new Uint8Array(60));
    const mdhd = opts.mdhdVersion === 1 ? box("mdhd", vf(1, 0), u64(0), u64(0), u32(t.timescale), u64(0), u32(0)) : box("mdhd", vf(0, 0), u32(0, 0, t.timescale, 0, 0));
    const hdlr = box("hdlr", vf(0, 0), u32(0), text(t.kind), u32(0, 0, 0), new Uint8Array([0]));
    return box("trak", tkhd, box("mdia", mdhd, hdlr));
  });
  const trex = tracks.map((t) => box("trex", vf(0, 0), u32(t.id, 1, 0, 0, t.kind === "soun" ? 0x02000000 : 0x01010000)));
  const moov = box("moov", box("mvhd", vf(0, 0), new Uint8Array(96)), ...traks, box("mvex", ...trex));
  return concat([ftyp, moov]);
}

export interface TestRun {
  trackId: number;
  baseDecodeTime: number;
  /** per-sample durations */
  durations: number[];
  /** the first sample is a sync sample */
  sync: boolean;
  /** write tfdt as version 1 (64-bit) */
  tfdtV1?: boolean;
}

/** One moof + mdat. The trun carries data offset, first-sample flags and per-sample durations and sizes. */
export function fragment(seq: number, runs: TestRun[]): Uint8Array {
  const trafs = runs.map((r) => {
    const tfhd = box("tfhd", vf(0, 0x020000), u32(r.trackId));
    const tfdt = r.tfdtV1 ? box("tfdt", vf(1, 0), u64(r.baseDecodeTime)) : box("tfdt", vf(0, 0), u32(r.baseDecodeTime));
    const flags = 0x01 | 0x04 | 0x100 | 0x200;
    const samples = r.durations.flatMap((d) => [d, 100]);
    const trun = box("trun", vf(0, flags), u32(r.durations.length, 0, r.sync ? 0x02000000 : 0x01010000, ...samples));
    return box("traf", tfhd, tfdt, trun);
  });
  const moof = box("moof", box("mfhd", vf(0, 0), u32(seq)), ...trafs);
  const bytes = runs.reduce((n, r) => n + r.durations.length * 100, 0);
  return concat([moof, box("mdat", new Uint8Array(bytes))]);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
