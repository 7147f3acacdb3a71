import { describe, expect, it } from "vitest";
import { concat, fragment, initSegment } from "../../../test/helpers/fmp4.ts";
import { Packager, type PackagerEvent, type PartEvent, partPlan, type SegmentEvent } from "./packager.ts";

// 30 fps video at timescale 15360 (512 ticks a frame) with AAC beside it: 10-frame parts, keyframe every 60.
const VIDEO = { id: 1, kind: "vide" as const, timescale: 15360 };
const AUDIO = { id: 2, kind: "soun" as const, timescale: 48000 };

function stream(frames: number, opts: { framesPerPart?: number; gop?: number } = {}): Uint8Array {
  const per = opts.framesPerPart ?? 10;
  const gop = opts.gop ?? 60;
  const out = [initSegment([VIDEO, AUDIO])];
  let seq = 1;
  for (let f = 0; f < frames; ) {
    // a fragment never crosses a keyframe (frag_keyframe)
    const nextKey = (Math.floor(f / gop) + 1) * gop;
    const n = Math.min(per, frames - f, nextKey - f);
    out.push(
      fragment(seq++, [
        { trackId: 1, baseDecodeTime: f * 512, durations: Array(n).fill(512), sync: f % gop === 0 },
        { trackId: 2, baseDecodeTime: Math.round((f / 30) * 48000), durations: Array(Math.round((n / 30) * 48000 / 1024)).fill(1024), sync: true },
      ]),
    );
    f += n;
  }
  return concat(out);
}

function feed(p: Packager, bytes: Uint8Array, step = 997): PackagerEvent[] {
  const out: PackagerEvent[] = [];
  for (let at = 0; at < bytes.byteLength; at += step) out.push(...p.push(bytes.subarray(at, at + step)));
  return out;
}

const parts = (es: PackagerEvent[]) => es.filter((e): e is PartEvent => e.kind === "part");
const segments = (es: PackagerEvent[]) => es.filter((e): e is SegmentEvent => e.kind === "segment");

describe("Packager", () => {
  it("cuts one part per fragment and segments of whole parts at keyframes", () => {
    const p = new Packager({ segmentS: 2, partTargetS: 0.337 });
    const events = [...feed(p, stream(60 * 3 + 20)), ...p.end()];
    expect(events[0]!.kind).toBe("init");
    const ps = parts(events);
    const ss = segments(events);
    expect(ps).toHaveLength(6 * 3 + 2);
    expect(ss.map((s) => [s.segment, s.parts])).toEqual([
      [0, 6],
      [1, 6],
      [2, 6],
      [3, 2],
    ]);
    for (const part of ps) {
      expect(part.durationS).toBeCloseTo(1 / 3, 6);
      expect(part.lastFrameS - part.startS).toBeCloseTo(9 / 30, 6);
    }
    // independent exactly on the parts that start a segment (keyframe every 2 s)
    expect(ps.filter((x) => x.independent).map((x) => [x.segment, x.index])).toEqual([
      [0, 0],
      [1, 0],
      [2, 0],
      [3, 0],
    ]);
    expect(ps.map((x) => x.seq)).toEqual(ps.map((_, i) => i));
    expect(ss[1]!.startS).toBeCloseTo(2, 6);
    expect(ss[1]!.durationS).toBeCloseTo(2, 6);
    expect(p.stats).toEqual({ parts: 20, segments: 4, overTarget: 0 });
  });

  it("makes every segment the concatenation of its parts' bytes", () => {
    const p = new Packager({ segmentS: 2, partTargetS: 0.337 });
    const events = [...feed(p, stream(120), 13), ...p.end()];
    for (const s of segments(events)) {
      const own = parts(events).filter((x) => x.segment === s.segment);
      expect(Buffer.from(s.bytes).equals(Buffer.from(concat(own.map((x) => x.bytes))))).toBe(true);
    }
    // and the parts are the stream after the init segment, byte for byte
    const init = events[0]!.kind === "init" ? events[0]!.bytes : new Uint8Array();
    expect(init.byteLength + parts(events).reduce((n, x) => n + x.bytes.byteLength, 0)).toBe(stream(120).byteLength);
  });

  it("announces a segment's end before the first part of the next one", () => {
    const p = new Packager({ segmentS: 2, partTargetS: 0.337 });
    const order = feed(p, stream(70)).map((e) => (e.kind === "part" ? `p${e.segment}.${e.index}` : e.kind === "segment" ? `s${e.segment}` : e.kind));
    expect(order.slice(5, 9)).toEqual(["p0.4", "p0.5", "s0", "p1.0"]);
  });

  it("does not cut a segment at a keyframe that comes too early, and counts parts over PART-TARGET", () => {
    // keyframes every 30 frames (1 s) with 2 s segments: a segment spans two GOPs
    const p = new Packager({ segmentS: 2, partTargetS: 0.337 });
    const events = [...feed(p, stream(120, { gop: 30 })), ...p.end()];
    expect(segments(events).map((s) => s.parts)).toEqual([6, 6]);
    expect(parts(events).filter((x) => x.independent)).toHaveLength(4);
    const q = new Packager({ segmentS: 2, partTargetS: 0.3 });
    feed(q, stream(30));
    expect(q.stats.overTarget).toBe(3);
  });

  it("refuses what is not a fragmented stream", () => {
    const p = new Packager({ segmentS: 2, partTargetS: 0.337 });
    const frag = fragment(1, [{ trackId: 1, baseDecodeTime: 0, durations: [512], sync: true }]);
    expect(() => p.push(frag)).toThrow(/before the init/);
  });
});

describe("partPlan", () => {
  it("rounds to whole frames and leaves the jitter inside PART-TARGET", () => {
    expect(partPlan({ kind: "video", fps: 30 }, 333)).toEqual({ frames: 10, partS: 1 / 3, fragmentUs: 330333, partTargetS: 0.337 });
    const p25 = partPlan({ kind: "video", fps: 25 }, 333);
    expect(p25.frames).toBe(8);
    expect(p25.partS).toBeCloseTo(0.32, 9);
    const audio = partPlan({ kind: "audio", sampleRate: 48000 }, 333);
    expect(audio.frames).toBe(16);
    expect(audio.partTargetS).toBe(0.345);
    // a fragment closes on the frame that completes the part: just under N frames, above N - 1
    for (const fps of [24, 25, 29.97, 30, 50, 60]) {
      const plan = partPlan({ kind: "video", fps }, 333);
      expect(plan.fragmentUs / 1e6).toBeLessThan(plan.partS);
      expect(plan.fragmentUs / 1e6).toBeGreaterThan(((plan.frames - 1) / fps));
      expect(plan.partS * 0.999).toBeLessThan(plan.partTargetS);
      expect(plan.partS).toBeGreaterThanOrEqual(plan.partTargetS * 0.85);
    }
  });
});
