import { describe, expect, it } from "vitest";
import { retryDelayMs } from "./backoff.ts";
import { OUTBOX_DEFAULTS, outboxConfig } from "./config.ts";
import { classifyStatus } from "./deliver.ts";

const OUTBOX_BASE_DELAY_MS = OUTBOX_DEFAULTS.retryBaseMs;
const OUTBOX_MAX_DELAY_MS = OUTBOX_DEFAULTS.retryMaxMs;

describe("retryDelayMs", () => {
  it("doubles from the base delay and stops at the cap (no jitter at random() = 0.5)", () => {
    const mid = () => 0.5;
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, OUTBOX_DEFAULTS, mid))).toEqual([1, 2, 4, 8].map((k) => k * OUTBOX_BASE_DELAY_MS));
    expect(retryDelayMs(20, OUTBOX_DEFAULTS, mid)).toBe(OUTBOX_MAX_DELAY_MS);
    expect(retryDelayMs(10_000, OUTBOX_DEFAULTS, mid)).toBe(OUTBOX_MAX_DELAY_MS);
  });

  it("spreads each delay by at most 20 % either way, never above the cap", () => {
    expect(retryDelayMs(1, OUTBOX_DEFAULTS, () => 0)).toBe(OUTBOX_BASE_DELAY_MS * 0.8);
    expect(retryDelayMs(1, OUTBOX_DEFAULTS, () => 0.999999)).toBeCloseTo(OUTBOX_BASE_DELAY_MS * 1.2, -1);
    expect(retryDelayMs(30, OUTBOX_DEFAULTS, () => 0.999999)).toBe(OUTBOX_MAX_DELAY_MS);
  });
});

describe("outboxConfig", () => {
  it("reads the env vars, falling back to the defaults on anything that is not a positive integer", () => {
    expect(outboxConfig({})).toEqual(OUTBOX_DEFAULTS);
    expect(outboxConfig({ OUTBOX_RETRY_BASE_MS: "100", OUTBOX_RETRY_MAX_MS: "2000", OUTBOX_DELIVERY_TIMEOUT_MS: "3000", OUTBOX_BATCH_MAX: "20" })).toEqual({
      retryBaseMs: 100,
      retryMaxMs: 2000,
      deliveryTimeoutMs: 3000,
      batchMax: 20,
    });
    expect(outboxConfig({ OUTBOX_RETRY_BASE_MS: "-5", OUTBOX_RETRY_MAX_MS: "soon", OUTBOX_DELIVERY_TIMEOUT_MS: "1.5", OUTBOX_BATCH_MAX: "0" })).toEqual(OUTBOX_DEFAULTS);
    // a batch is at most what the bridge takes (MAX_BATCH_EVENTS); 1 means the single-event form
    expect(outboxConfig({ OUTBOX_BATCH_MAX: "5000" }).batchMax).toBe(100);
    expect(outboxConfig({ OUTBOX_BATCH_MAX: "1" }).batchMax).toBe(1);
    // the cap is never below the base
    expect(outboxConfig({ OUTBOX_RETRY_BASE_MS: "5000", OUTBOX_RETRY_MAX_MS: "1000" }).retryMaxMs).toBe(5000);
  });
});

describe("classifyStatus", () => {
  it("forgets an event only on 2xx, dead-letters permanent 4xx, retries the rest", () => {
    expect([200, 201, 202, 204].map(classifyStatus)).toEqual(["delivered", "delivered", "delivered", "delivered"]);
    expect([400, 404, 409, 413, 415, 422].map(classifyStatus)).toEqual(Array(6).fill("dead"));
    // 401/403: a secret or clock mismatch between edge and bridge; the events wait until it is fixed.
    expect([401, 403, 408, 425, 429, 500, 502, 503, 504, 302].map(classifyStatus)).toEqual(Array(10).fill("retry"));
  });
});
