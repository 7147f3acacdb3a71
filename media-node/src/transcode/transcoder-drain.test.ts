// FfmpegTranscoder's drain after the input ended, against a stand-in for FFmpeg (a script that prints FFmpeg's
// stats lines at a chosen pace and stops on SIGINT like FFmpeg does): a run still making progress is left to
// finish, a run that stopped making progress is stopped, and the bound stops a run that would go on forever,
// with a warning that the recording's end is cut. (With real FFmpeg: test/media/drain.ffmpeg.test.ts.)

import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, type LogFields } from "../log.ts";
import type { FfmpegPlan } from "./args.ts";
import { FfmpegTranscoder } from "./transcoder.ts";

/** A stand-in for FFmpeg: a stats line every FAKE_EVERY_MS, FAKE_LINES of them (0: forever), then exit 0; SIGINT ends it. */
const FAKE = `#!/usr/bin/env node
// fluent-ffmpeg first asks for -formats (capability checks): nothing to list
if (!process.argv.includes("-i")) process.exit(0);
const every = Number(process.env.FAKE_EVERY_MS), lines = Number(process.env.FAKE_LINES);
let n = 0;
process.on("SIGINT", () => { process.stderr.write("Exiting normally, received signal 2.\\n"); process.exit(255); });
const tick = () => {
  n++;
  process.stderr.write("[info] frame=" + n * 3 + " fps=30 q=-1.0 size=N/A time=00:00:" + String(n).padStart(2, "0") + ".00 bitrate=N/A speed=0.5x\\n");
  if (lines > 0 && n >= lines) process.exit(0);
};
tick();
setInterval(tick, every);
`;

describe("FfmpegTranscoder drain after the input ended", () => {
  let dir: string;
  let fake: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pulsecast-drain-"));
    fake = join(dir, "fake-ffmpeg.sh");
    await writeFile(fake, FAKE);
    await chmod(fake, 0o755);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function transcoder(env: { every: number; lines: number }) {
    process.env.FAKE_EVERY_MS = String(env.every);
    process.env.FAKE_LINES = String(env.lines);
    const logs: (LogFields & { level: string; msg: string })[] = [];
    const log = createLogger({ level: "debug", sink: (_l, r) => void logs.push(r) });
    const plan = (outDir: string): FfmpegPlan => ({ input: "in", inputArgs: ["-nostdin", "-y"], outputArgs: ["-an", "-sn"], output: join(outDir, "out"), variants: [] });
    let input = true;
    const t = new FfmpegTranscoder({
      ffmpegPath: fake,
      workRoot: join(dir, `w${Math.random().toString(36).slice(2)}`),
      plan,
      maxRestarts: 0,
      hasInput: () => input,
      output: { begin: async () => {}, written: () => {}, end: async () => {} },
      log,
    });
    const exits: { planned: boolean; code: number | null }[] = [];
    t.on("exit", (e) => exits.push(e));
    const exited = new Promise<void>((r) => t.once("exit", () => r()));
    return { t, logs, exits, exited, leave: () => (input = false) };
  }

  it("leaves a run that still makes progress to finish by itself, however long the fixed wait used to be", async () => {
    // 2.4 s of progress after the input ended, with a stall limit of 1 s and a bound of 30 s
    const { t, logs, exits, exited, leave } = transcoder({ every: 200, lines: 12 });
    await t.startRun("start");
    leave();
    const at = Date.now();
    t.inputEnded({ stallMs: 1000, maxMs: 30_000 });
    await exited;
    expect(Date.now() - at).toBeGreaterThan(1500);
    expect(exits).toEqual([expect.objectContaining({ planned: false, code: 0 })]);
    expect(logs.filter((l) => l.level === "warn")).toEqual([]);
    await t.close({ drain: true });
  });

  it("stops a run that makes no progress for the stall limit", async () => {
    const { t, logs, exits, exited, leave } = transcoder({ every: 60_000, lines: 0 });
    await t.startRun("start");
    leave();
    t.inputEnded({ stallMs: 500, maxMs: 30_000 });
    await exited;
    expect(exits).toEqual([expect.objectContaining({ planned: true })]);
    expect(logs.find((l) => l.level === "warn" && /no progress after its input ended/.test(l.msg))).toBeDefined();
  });

  it("stops a run at the drain bound even while it progresses, and warns that the end is cut", async () => {
    const { t, logs, exits, exited, leave } = transcoder({ every: 100, lines: 0 });
    await t.startRun("start");
    leave();
    const at = Date.now();
    t.inputEnded({ stallMs: 1000, maxMs: 800 });
    // the session's end (grace window over) waits for the drain instead of cutting it
    await t.close({ drain: true });
    await exited;
    expect(Date.now() - at).toBeGreaterThanOrEqual(800);
    expect(exits).toEqual([expect.objectContaining({ planned: true })]);
    expect(logs.find((l) => l.level === "warn" && /drain bound was reached; the recording's end is cut/.test(l.msg))).toMatchObject({ maxMs: 800 });
  });

  it("a close without drain stops a draining run at once", async () => {
    const { t, exits, leave } = transcoder({ every: 100, lines: 0 });
    await t.startRun("start");
    leave();
    t.inputEnded({ stallMs: 5000, maxMs: 60_000 });
    const at = Date.now();
    await t.close();
    expect(Date.now() - at).toBeLessThan(3000);
    expect(exits).toEqual([expect.objectContaining({ planned: true })]);
  });
});
