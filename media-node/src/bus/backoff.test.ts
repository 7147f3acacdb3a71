import { describe, expect, it } from "vitest";
import { backoffDelay } from "./backoff.ts";

describe("exponential backoff with jitter", () => {
  it("doubles per attempt between half and all of the cap, and stops growing at the max", () => {
    const lo = { baseMs: 100, maxMs: 5000, random: () => 0 };
    const hi = { baseMs: 100, maxMs: 5000, random: () => 0.999999 };
    expect([1, 2, 3, 4].map((a) => backoffDelay(a, lo))).toEqual([50, 100, 200, 400]);
    expect([1, 2, 3, 4].map((a) => backoffDelay(a, hi))).toEqual([99, 199, 399, 799]);
    expect(backoffDelay(50, hi)).toBe(4999);
    expect(backoffDelay(1000, lo)).toBe(2500);
  });

  it("spreads senders that failed together", () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(5, { baseMs: 100, maxMs: 10_000 })));
    expect(delays.size).toBeGreaterThan(10);
    for (const d of delays) expect(d).toBeGreaterThanOrEqual(800);
  });
});
