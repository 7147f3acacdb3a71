// FfmpegJob's signals against a tiny real FFmpeg (a 64x64 lavfi source into the null muxer, a few % of a core):
// fluent-ffmpeg spawns asynchronously, so these check what happens to a stop/kill asked for before the
// process exists, and that a stop after it exists is still the graceful SIGINT.

import { describe, expect, it } from "vitest";
import type { FfmpegPlan } from "./args.ts";
import { FfmpegJob } from "./ffmpeg.ts";

/** Runs at realtime for `seconds`: long enough that only a signal ends it within a test. */
function tinyPlan(seconds: number): FfmpegPlan {
  return {
    input: "testsrc=size=64x64:rate=10",
    inputArgs: ["-re", "-f", "lavfi", "-t", String(seconds)],
    outputArgs: ["-f", "null", "-loglevel", "info"],
    output: "/dev/null",
    variants: [],
  };
}

function exitOf(job: FfmpegJob): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve) => job.once("exit", ({ code, signal }) => resolve({ code, signal })));
}

describe("FfmpegJob signals", () => {
  it("a stop() before the process exists is sent as SIGINT once it does, not turned into a late SIGKILL", async () => {
    const job = new FfmpegJob(tinyPlan(60));
    const exit = exitOf(job);
    const started = Date.now();
    job.run();
    expect(job.pid).toBeUndefined(); // spawning is asynchronous: nothing to signal yet
    // Before the fix this SIGINT was dropped and the SIGKILL 20 s later was the only signal the process got.
    await job.stop(20_000);
    const { code, signal } = await exit;
    expect(signal).not.toBe("SIGKILL");
    // FFmpeg exits 255 after a SIGINT once its handler is installed, or dies of the SIGINT if it came earlier
    expect(code === 255 || signal === "SIGINT").toBe(true);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(job.running).toBe(false);
  });

  it("a kill() before the process exists kills it once it does", async () => {
    const job = new FfmpegJob(tinyPlan(60));
    const exit = exitOf(job);
    job.run();
    await job.kill();
    expect((await exit).signal).toBe("SIGKILL");
  });

  it("a stop() while it runs is a SIGINT that FFmpeg handles (exit 255, no SIGKILL)", async () => {
    const job = new FfmpegJob(tinyPlan(60));
    const exit = exitOf(job);
    const progressed = new Promise<void>((resolve) => job.once("progress", () => resolve()));
    job.run();
    await progressed;
    expect(job.pid).toBeGreaterThan(0);
    await job.stop(20_000);
    expect(await exit).toEqual({ code: 255, signal: null });
  });
});
