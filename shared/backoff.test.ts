import { describe, expect, it } from "vitest";
import { backoffDelay } from "./backoff.ts";

const base = 500;
const max = 60_000;

describe("backoffDelay with a fractional jitter (the edge outboxes: +/-20 %)", () => {
  const opts = (random: () => number) => ({ baseMs: base, maxMs: max, jitter: 0.2, random });

  it("doubles from the base delay and stops at the cap (no jitter at random() = 0.5)", () => {
    const mid = () => 0.5;
    expect([1, 2, 3, 4].map((n) => backoffDelay(n, opts(mid)))).toEqual([1, 2, 4, 8].map((k) => k * base));
    expect(backoffDelay(20, opts(mid))).toBe(max);
    expect(backoffDelay(10_000, opts(mid))).toBe(max);
  });

  it("spreads each delay by at most 20 % either way, never above the cap", () => {
    expect(backoffDelay(1, opts(() => 0))).toBe(base * 0.8);
    expect(backoffDelay(1, opts(() => 0.999999))).toBeCloseTo(base * 1.2, -1);
    expect(backoffDelay(30, opts(() => 0.999999))).toBe(max);
  });
});

describe("backoffDelay with equal jitter (the default)", () => {
  it("is uniform in [cap/2, cap] with cap = min(max, base * 2^(attempt-1))", () => {
    expect(backoffDelay(1, { baseMs: 100, maxMs: 10_000, random: () => 0 })).toBe(50);
    expect(backoffDelay(1, { baseMs: 100, maxMs: 10_000, random: () => 0.999999 })).toBe(99);
    expect(backoffDelay(4, { baseMs: 100, maxMs: 10_000, random: () => 0 })).toBe(400);
    expect(backoffDelay(40, { baseMs: 100, maxMs: 10_000, random: () => 0.5 })).toBe(7500);
  });
});

describe("backoffDelay with equal jitter (the default: media node outbox, bridges, uploads)", () => {
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
