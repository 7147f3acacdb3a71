import { describe, expect, it } from "vitest";
import { box, concat, fragment, initSegment } from "../../../test/helpers/fmp4.ts";
import { BoxSplitter, children, parseFragment, parseInit } from "./fmp4.ts";

const tracks = [
  { id: 1, kind: "vide" as const, timescale: 15360 },
  { id: 2, kind: "soun" as const, timescale: 48000 },
];

describe("BoxSplitter", () => {
  it("returns whole top-level boxes whatever the chunking", () => {
    const stream = concat([initSegment(tracks), fragment(1, [{ trackId: 1, baseDecodeTime: 0, durations: [512, 512], sync: true }])]);
    for (const step of [1, 3, 7, 64, stream.byteLength]) {
      const s = new BoxSplitter();
      const types: string[] = [];
      let bytes = 0;
      for (let at = 0; at < stream.byteLength; at += step) {
        for (const b of s.push(stream.subarray(at, at + step))) {
          types.push(b.type);
          bytes += b.bytes.byteLength;
        }
      }
      expect(types).toEqual(["ftyp", "moov", "moof", "mdat"]);
      expect(bytes).toBe(stream.byteLength);
      expect(s.pending).toBe(0);
    }
  });

  it("keeps an incomplete box until the rest arrives", () => {
    const s = new BoxSplitter();
    const b = box("mdat", new Uint8Array(100));
    expect(s.push(b.subarray(0, 50))).toEqual([]);
    expect(s.pending).toBe(50);
    expect(s.push(b.subarray(50)).map((x) => x.type)).toEqual(["mdat"]);
  });

  it("reads 64-bit box sizes", () => {
    const payload = new Uint8Array(20);
    const big = new Uint8Array(16 + payload.byteLength);
    const v = new DataView(big.buffer);
    v.setUint32(0, 1);
    big.set([0x6d, 0x64, 0x61, 0x74], 4);
    v.setBigUint64(8, BigInt(big.byteLength));
    const out = new BoxSplitter().push(big);
    expect(out).toHaveLength(1);
    expect(out[0]!.bytes.byteLength).toBe(36);
  });

  it("refuses boxes that run to the end of the stream or declare impossible sizes", () => {
    const zero = box("mdat", new Uint8Array(4));
    new DataView(zero.buffer).setUint32(0, 0);
    expect(() => new BoxSplitter().push(zero)).toThrow(/end of the stream/);
    const tiny = box("free");
    new DataView(tiny.buffer).setUint32(0, 4);
    expect(() => new BoxSplitter().push(tiny)).toThrow(/declares 4 bytes/);
  });
});

describe("parseInit", () => {
  it("finds each track's id, handler and timescale (mdhd v0 and v1)", () => {
    for (const mdhdVersion of [0, 1] as const) {
      const moov = new BoxSplitter().push(initSegment(tracks, { mdhdVersion })).find((b) => b.type === "moov")!;
      const parsed = parseInit(moov.bytes);
      expect(parsed.map((t) => [t.id, t.kind, t.timescale])).toEqual([
        [1, "vide", 15360],
        [2, "soun", 48000],
      ]);
      expect(parsed[1]!.defaultSampleFlags).toBe(0x02000000);
    }
  });
});

describe("parseFragment", () => {
  const init = parseInit(new BoxSplitter().push(initSegment(tracks)).find((b) => b.type === "moov")!.bytes);

  it("sums sample durations per track and reads the first sample's sync flag", () => {
    const [moof] = new BoxSplitter().push(
      fragment(7, [
        { trackId: 1, baseDecodeTime: 5120, durations: [512, 512, 513], sync: false },
        { trackId: 2, baseDecodeTime: 16000, durations: [1024, 1024], sync: true, tfdtV1: true },
      ]),
    );
    const runs = parseFragment(moof!.bytes, init);
    expect(runs).toEqual([
      { trackId: 1, baseDecodeTime: 5120, sampleCount: 3, duration: 1537, lastSampleDuration: 513, startsWithSync: false },
      { trackId: 2, baseDecodeTime: 16000, sampleCount: 2, duration: 2048, lastSampleDuration: 1024, startsWithSync: true },
    ]);
  });

  it("falls back to the tfhd and trex defaults when the trun has no per-sample values", () => {
    // tfhd with default duration (0x08) and default flags (0x20); trun with only a sample count.
    const vf = (flags: number) => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, flags);
      return b;
    };
    const u = (x: number) => vf(x);
    const tfhd = box("tfhd", vf(0x020000 | 0x08 | 0x20), u(1), u(500), u(0x00010000));
    const trun = box("trun", vf(0), u(4));
    const moof = box("moof", box("mfhd", vf(0), u(1)), box("traf", tfhd, box("tfdt", vf(0), u(1000)), trun));
    expect(parseFragment(moof, init)).toEqual([{ trackId: 1, baseDecodeTime: 1000, sampleCount: 4, duration: 2000, lastSampleDuration: 500, startsWithSync: false }]);
    // no tfhd defaults: the trex's (audio: sync)
    const audio = box("moof", box("mfhd", vf(0), u(1)), box("traf", box("tfhd", vf(0x020000), u(2)), box("tfdt", vf(0), u(0)), box("trun", vf(0x100), u(1), u(1024))));
    expect(parseFragment(audio, init)[0]!.startsWithSync).toBe(true);
  });

  it("refuses a trun that claims more samples than it holds", () => {
    const moof = concat([fragment(1, [{ trackId: 1, baseDecodeTime: 0, durations: [1, 2], sync: true }])]);
    const [m] = new BoxSplitter().push(moof);
    const bytes = m!.bytes.slice();
    const traf = children(bytes).find((c) => c.type === "traf")!.bytes;
    const trun = children(traf).find((c) => c.type === "trun")!.bytes;
    new DataView(trun.buffer, trun.byteOffset).setUint32(12, 1000);
    expect(() => parseFragment(bytes, init)).toThrow(/overruns/);
  });
});
