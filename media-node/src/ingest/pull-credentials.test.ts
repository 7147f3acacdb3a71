import { describe, expect, it } from "vitest";
import { PullCredentials } from "./pull-credentials.ts";

describe("pull credentials (who may play from the RTMP port)", () => {
  const clock = () => {
    let t = 1_000_000;
    return { now: () => t, advance: (ms: number) => void (t += ms) };
  };

  it("admits one play of its own stream from the node's own address (IPv4, IPv6, IPv4-mapped), then never again", () => {
    const pulls = new PullCredentials({ ttlMs: 10_000 });
    for (const remoteAddress of ["127.0.0.1", "::1", "::ffff:127.0.0.1"]) {
      const credential = pulls.issue("/live/a");
      expect(pulls.check({ path: "/live/a", credential, remoteAddress })).toEqual({ ok: true });
      expect(pulls.check({ path: "/live/a", credential, remoteAddress })).toMatchObject({ ok: false, reason: "pull-unknown" });
    }
    expect(pulls.size).toBe(0);
  });

  it("refuses a play without a credential, and a made-up one", () => {
    const pulls = new PullCredentials({ ttlMs: 10_000 });
    pulls.issue("/live/a");
    expect(pulls.check({ path: "/live/a", credential: undefined, remoteAddress: "127.0.0.1" })).toMatchObject({ ok: false, reason: "play-not-allowed" });
    expect(pulls.check({ path: "/live/a", credential: "", remoteAddress: "127.0.0.1" })).toMatchObject({ ok: false, reason: "play-not-allowed" });
    expect(pulls.check({ path: "/live/a", credential: "made-up", remoteAddress: "127.0.0.1" })).toMatchObject({ ok: false, reason: "pull-unknown" });
  });

  it("refuses stream A's credential for stream B, and revokes it (it has leaked)", () => {
    const pulls = new PullCredentials({ ttlMs: 10_000 });
    const forA = pulls.issue("/live/a");
    expect(pulls.check({ path: "/live/b", credential: forA, remoteAddress: "127.0.0.1" })).toMatchObject({ ok: false, reason: "pull-wrong-stream" });
    expect(pulls.check({ path: "/live/a", credential: forA, remoteAddress: "127.0.0.1" })).toMatchObject({ ok: false, reason: "pull-unknown" });
  });

  it.each(["192.0.2.7", "::ffff:192.0.2.7", "2001:db8::1", "10.0.0.1", "127.0.0.2", "::ffff:127.0.0.9", "", undefined])("refuses a valid credential from %s (not the node itself) and revokes it", (remoteAddress) => {
    const pulls = new PullCredentials({ ttlMs: 10_000 });
    const credential = pulls.issue("/live/a");
    const verdict = pulls.check({ path: "/live/a", credential, remoteAddress });
    expect(verdict).toMatchObject({ ok: false, reason: "pull-not-loopback" });
    if (!verdict.ok) expect(verdict.detail).toMatch(/revoked/);
    expect(pulls.check({ path: "/live/a", credential, remoteAddress: "127.0.0.1" })).toMatchObject({ ok: false, reason: "pull-unknown" });
  });

  it("expires an unused credential after its TTL, and forgets it one TTL later", () => {
    const c = clock();
    const pulls = new PullCredentials({ ttlMs: 1000, now: c.now });
    const early = pulls.issue("/live/a");
    const late = pulls.issue("/live/a");
    c.advance(999);
    expect(pulls.check({ path: "/live/a", credential: early, remoteAddress: "127.0.0.1" })).toEqual({ ok: true });
    c.advance(1);
    expect(pulls.check({ path: "/live/a", credential: late, remoteAddress: "127.0.0.1" })).toMatchObject({ ok: false, reason: "pull-expired" });
    const stale = pulls.issue("/live/a");
    c.advance(2000);
    pulls.issue("/live/other"); // issuing sweeps what expired a TTL ago
    expect(pulls.size).toBe(1);
    expect(pulls.check({ path: "/live/a", credential: stale, remoteAddress: "127.0.0.1" })).toMatchObject({ ok: false, reason: "pull-unknown" });
  });

  it("revokes every unused credential of a stream when its publisher leaves, and only those", () => {
    const pulls = new PullCredentials({ ttlMs: 10_000 });
    const a1 = pulls.issue("/live/a");
    const a2 = pulls.issue("/live/a");
    const b = pulls.issue("/live/b");
    pulls.revokePath("/live/a");
    expect(pulls.check({ path: "/live/a", credential: a1, remoteAddress: "127.0.0.1" })).toMatchObject({ ok: false, reason: "pull-unknown" });
    expect(pulls.check({ path: "/live/a", credential: a2, remoteAddress: "127.0.0.1" })).toMatchObject({ ok: false, reason: "pull-unknown" });
    expect(pulls.check({ path: "/live/b", credential: b, remoteAddress: "127.0.0.1" })).toEqual({ ok: true });
  });

  it("mints URL-safe credentials that differ every time", () => {
    const pulls = new PullCredentials({ ttlMs: 10_000 });
    const seen = new Set(Array.from({ length: 200 }, () => pulls.issue("/live/a")));
    expect(seen.size).toBe(200);
    for (const c of seen) expect(c).toMatch(/^[A-Za-z0-9_-]{24}$/);
  });
});
