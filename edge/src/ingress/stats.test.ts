import { describe, expect, it } from "vitest";
import { IngressStats } from "./stats.ts";

describe("IngressStats", () => {
  it("counts outcomes per type, refusals per code, latency from the event's time and the edge's own share", () => {
    const stats = new IngressStats();
    const t0 = Date.parse("2026-01-01T00:00:00.000Z");
    // each event reached the ingress half way between its time and its effect
    for (let i = 0; i < 100; i++) stats.handled(`e${i}`, "stream.live", "applied", new Date(t0).toISOString(), t0 + (i + 1) / 2, t0 + i + 1);
    stats.handled("e0", "stream.live", "duplicate", new Date(t0).toISOString(), t0, t0);
    stats.handled("x", "chat.message", "ignored", new Date(t0).toISOString(), t0, t0);
    stats.rejectedRequest("bad_signature");
    stats.rejectedRequest("bad_signature");
    stats.failedEvent();
    const s = stats.snapshot();
    expect(s).toMatchObject({ applied: 100, duplicates: 1, ignored: 1, failed: 1, appliedTwice: 0, rejected: { bad_signature: 2 } });
    expect(s.byType).toEqual({ "stream.live": { applied: 100, duplicates: 1, ignored: 0 }, "chat.message": { applied: 0, duplicates: 0, ignored: 1 } });
    expect(s.latencyMs).toEqual({ count: 100, p50: 50, p99: 99, max: 100 });
    expect(s.edgeLatencyMs).toEqual({ count: 100, p50: 25, p99: 49.5, max: 50 });
  });

  it("flags an id applied twice, and keeps that memory across a reset", () => {
    const stats = new IngressStats();
    const now = new Date().toISOString();
    stats.handled("same", "stream.live", "applied", now);
    stats.reset();
    expect(stats.snapshot()).toMatchObject({ applied: 0, appliedTwice: 0, latencyMs: { count: 0, p50: null }, edgeLatencyMs: { count: 0, p50: null } });
    stats.handled("same", "stream.live", "applied", now);
    expect(stats.snapshot()).toMatchObject({ applied: 1, appliedTwice: 1 });
  });
});
