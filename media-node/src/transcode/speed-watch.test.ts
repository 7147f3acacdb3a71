import { describe, expect, it } from "vitest";
import { SpeedWatch } from "./speed-watch.ts";

/** Feeds one sample per wall second; `media(t)` is the media time encoded after t seconds. */
function feed(watch: SpeedWatch, seconds: number, media: (t: number) => number) {
  const verdicts = [];
  for (let t = 0; t <= seconds; t++) verdicts.push(watch.sample(t * 1000, media(t)));
  return verdicts;
}

describe("SpeedWatch", () => {
  it("says nothing before a full window was seen", () => {
    const v = feed(new SpeedWatch({ belowSpeed: 0.9, windowS: 4 }), 3, (t) => t * 0.5);
    expect(v.every((x) => x.speed === undefined && !x.behind)).toBe(true);
  });

  it("a live ladder that started late but keeps up is not behind (FFmpeg's cumulative speed would say 0.8x)", () => {
    // FFmpeg waited 2 s for its first frames, then keeps pace: cumulative speed at 10 s is 8/10 = 0.8
    const v = feed(new SpeedWatch({ belowSpeed: 0.9, windowS: 4 }), 10, (t) => Math.max(0, t - 2));
    expect(v.at(-1)).toEqual({ speed: 1, behind: false });
  });

  it("a ladder encoding at 0.7x is behind once a full window says so", () => {
    const v = feed(new SpeedWatch({ belowSpeed: 0.9, windowS: 4 }), 8, (t) => t * 0.7);
    expect(v[3]!.behind).toBe(false);
    expect(v[4]!.behind).toBe(true);
    expect(v.at(-1)!.speed).toBeCloseTo(0.7);
  });

  it("forgets the previous run on reset, and never says behind when disabled", () => {
    const w = new SpeedWatch({ belowSpeed: 0.9, windowS: 2 });
    feed(w, 4, (t) => t * 0.5);
    w.reset();
    expect(w.sample(10_000, 0)).toEqual({ speed: undefined, behind: false });
    expect(feed(new SpeedWatch({ belowSpeed: 0, windowS: 2 }), 5, (t) => t * 0.1).some((x) => x.behind)).toBe(false);
  });
});
