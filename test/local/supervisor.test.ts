// The local stack's supervisor, pure parts: restart delays (exponential, capped, jittered) and the rule that
// tells a crash worth restarting from a part that cannot start at all.
import { describe, expect, it } from "vitest";
import { decideAfterExit, DEFAULT_POLICY, restartDelayMs, type RestartPolicy } from "../../deploy/local/supervisor.ts";

const policy: RestartPolicy = { baseDelayMs: 500, maxDelayMs: 30_000, jitter: 0.2, stableAfterMs: 10_000, maxQuickExits: 5 };

describe("restartDelayMs", () => {
  it("doubles per restart in a row from the base, and caps at the maximum", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => restartDelayMs(n, policy, 0.5))).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  });

  it("spreads each delay by the jitter fraction either way, never past the cap", () => {
    expect(restartDelayMs(1, policy, 0)).toBe(400);
    expect(restartDelayMs(1, policy, 0.999999)).toBe(600);
    expect(restartDelayMs(3, policy, 0.25)).toBe(1800);
    expect(restartDelayMs(20, policy, 0.999999)).toBe(30_000);
    for (let i = 0; i < 100; i++) {
      const d = restartDelayMs(2, policy, Math.random());
      expect(d).toBeGreaterThanOrEqual(800);
      expect(d).toBeLessThanOrEqual(1200);
    }
  });

  it("has defaults that bring a crashed part back within a second", () => {
    expect(restartDelayMs(1, DEFAULT_POLICY, 0.999999)).toBeLessThanOrEqual(1000);
  });
});

describe("decideAfterExit", () => {
  it("restarts a part that crashed after running a while, starting the backoff over", () => {
    expect(decideAfterExit({ attempt: 4, quickExits: 3 }, 60_000, policy)).toEqual({ action: "restart", attempt: 1, quickExits: 0 });
  });

  it("backs off further for each quick exit in a row", () => {
    let h = { attempt: 0, quickExits: 0 };
    const attempts: number[] = [];
    for (let i = 0; i < 4; i++) {
      const d = decideAfterExit(h, 200, policy);
      if (d.action !== "restart") throw new Error(`gave up at exit ${i + 1}`);
      attempts.push(d.attempt);
      h = d;
    }
    expect(attempts).toEqual([1, 2, 3, 4]);
  });

  it("gives up on a part that exits soon after every start, maxQuickExits times in a row", () => {
    let h = { attempt: 0, quickExits: 0 };
    let last = decideAfterExit(h, 100, policy);
    for (let i = 1; i < policy.maxQuickExits && last.action === "restart"; i++) {
      h = last;
      last = decideAfterExit(h, 100, policy);
    }
    expect(last).toEqual({ action: "give-up", reason: "exited 5 times in a row within 10 s of starting" });
  });

  it("a stable run in between clears the quick-exit count", () => {
    const d = decideAfterExit({ attempt: 4, quickExits: 4 }, policy.stableAfterMs, policy);
    expect(d).toEqual({ action: "restart", attempt: 1, quickExits: 0 });
  });
});
