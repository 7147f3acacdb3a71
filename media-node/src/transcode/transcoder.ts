// The transcoder of one stream: FFmpeg runs, one after the other, each writing into its own folder. The first
// run, a restart after a crash (with back-off, up to a budget), and a new run when the input comes back (a
// broadcaster's reconnect) are decided here; what FFmpeg is told is args.ts (pure), how the process is handled
// is ffmpeg.ts (the one fluent-ffmpeg adapter), and what becomes of its output is the RunOutput's business.
//
// Invariants:
// - at most one FFmpeg process at a time: a run starts only after the previous one has exited and its output
//   has been handed over (so the outputs of two runs never interleave);
// - a run stopped on purpose (a resume, the end, the fallback after the input went away) is never a crash.

import { EventEmitter } from "node:events";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../log.ts";
import type { FfmpegPlan } from "./args.ts";
import { FfmpegJob } from "./ffmpeg.ts";
import type { Progress } from "./progress.ts";
import { backoffCap } from "../../../shared/backoff.ts";

export type RunReason = "start" | "restart" | "resume";

/** One FFmpeg run: epoch 0 is the first; run N writes into its own folder. */
export interface TranscodeRun {
  readonly epoch: number;
  readonly dir: string;
  readonly reason: RunReason;
}

/**
 * Takes what the runs write (the HLS publisher). The transcoder awaits it around every run, so a run's last
 * files are handed over before the next run's first ones exist.
 */
export interface RunOutput {
  /** before the run's process starts: be ready for files in `run.dir` */
  begin(run: TranscodeRun): Promise<void>;
  /** the process said it opened `path` for writing: something in the run's folder is being completed */
  written(run: TranscodeRun, path: string): void;
  /** the process is gone: take everything it left; the next run starts only after this resolves */
  end(run: TranscodeRun): Promise<void>;
}

export interface TranscoderEvents {
  /** a run's process started */
  run: [{ epoch: number; pid: number | undefined; reason: RunReason }];
  progress: [Progress];
  /** a run's process is gone and its output handed over; `planned`: it was stopped on purpose */
  exit: [{ epoch: number; code: number | null; signal: string | null; planned: boolean }];
  /** a run died while there was input: restarted after a back-off, or (restarts used up) no run follows */
  crash: [{ epoch: number; restarts: number; restarting: boolean; code: number | null; signal: string | null; stderrTail: string }];
}

/** What a live session needs from a transcoder, whatever runs the encodes. */
export interface Transcoder {
  /**
   * A new run: the first ("start") or after the input came back ("resume", which also resets the restart
   * budget). A current run is stopped first (a planned exit). Resolves true if a run started, false if there is
   * no input (anymore) or the transcoder is closed.
   */
  startRun(reason: "start" | "resume"): Promise<boolean>;
  /** The input went away: the run should drain and exit by itself; it is stopped after `afterMs` if not. */
  inputEnded(afterMs: number): void;
  /** Stops for good: the current run is stopped gracefully and its output handed over; no run starts after. */
  close(): Promise<void>;
  /** the process of the current run, while it runs */
  readonly pid: number | undefined;
  on<E extends keyof TranscoderEvents>(event: E, listener: (...args: TranscoderEvents[E]) => void): this;
  off<E extends keyof TranscoderEvents>(event: E, listener: (...args: TranscoderEvents[E]) => void): this;
}

export interface FfmpegTranscoderOptions {
  ffmpegPath: string;
  /** run N writes into `<workRoot>/e<N>` */
  workRoot: string;
  /** the FFmpeg command of a run writing into `outDir` */
  plan(outDir: string): FfmpegPlan;
  /** crash restarts while the input is there, before giving up (reset by a resume) */
  maxRestarts: number;
  /** is there input to transcode? Asked before a run starts and when one exits (a crash, or the input's end) */
  hasInput(): boolean;
  output: RunOutput;
  log: Logger;
}

/** FFmpeg's stderr may quote the input URL, whose `?pull=` key lets anyone play any stream: never log it. */
export function redactPullKey(text: string): string {
  return text.replace(/\?pull=[^\s'":&]+/g, "?pull=…");
}

/**
 * Back-off before crash restart number `n` (1-based): 250 ms doubling, at most 5 s. No jitter: one process per
 * stream restarts, there is no crowd of senders to spread out.
 */
export function restartDelayMs(n: number): number {
  return backoffCap(n, { baseMs: 250, maxMs: 5000 });
}

interface Run extends TranscodeRun {
  job: FfmpegJob;
  /** resolves when the exit is handled: output handed over, restart decided */
  finished: Promise<void>;
  /** stopped on purpose: its exit is not a crash and must not trigger a restart */
  stopping: boolean;
}

export class FfmpegTranscoder extends EventEmitter<TranscoderEvents> implements Transcoder {
  readonly #opts: FfmpegTranscoderOptions;
  readonly #log: Logger;
  #run: Run | undefined;
  #epoch = 0;
  #restarts = 0;
  #closed = false;
  /** serialises run changes: never two FFmpeg processes, even when a resume races a restart */
  #lock: Promise<void> = Promise.resolve();

  constructor(opts: FfmpegTranscoderOptions) {
    super();
    this.#opts = opts;
    this.#log = opts.log;
  }

  get pid(): number | undefined {
    return this.#run?.job.running ? this.#run.job.pid : undefined;
  }

  startRun(reason: "start" | "resume"): Promise<boolean> {
    if (reason === "resume") this.#restarts = 0;
    return this.#begin(reason);
  }

  inputEnded(afterMs: number): void {
    const run = this.#run;
    if (!run) return;
    const fallback = setTimeout(() => {
      run.stopping = true;
      void run.job.stop();
    }, afterMs);
    void run.job.exited.then(() => clearTimeout(fallback));
  }

  async close(): Promise<void> {
    this.#closed = true;
    // Wait for any run being started, then stop FFmpeg (SIGINT: it closes the segment in progress).
    await this.#lock;
    const run = this.#run;
    if (run) {
      run.stopping = true;
      await run.job.stop();
      await run.finished;
    }
  }

  async #begin(reason: RunReason): Promise<boolean> {
    const previous = this.#lock;
    let release!: () => void;
    this.#lock = new Promise((r) => (release = r));
    await previous;
    try {
      const old = this.#run;
      if (old) {
        old.stopping = true;
        await old.job.stop();
        await old.finished;
      }
      if (this.#closed || !this.#opts.hasInput()) return false;
      const epoch = this.#epoch++;
      const dir = join(this.#opts.workRoot, `e${epoch}`);
      await mkdir(dir, { recursive: true });
      const job = new FfmpegJob(this.#opts.plan(dir), { ffmpegPath: this.#opts.ffmpegPath });
      let finish!: () => void;
      const run: Run = { epoch, dir, reason, job, finished: new Promise((r) => (finish = r)), stopping: false };
      await this.#opts.output.begin(run);
      this.#run = run;
      job.on("progress", (p) => this.emit("progress", p));
      // The output's cue (FFmpeg logs the files it opens at -loglevel info, which args.ts asks for): without it
      // a run's segments would only be taken when it ends (hls-publisher.ffmpeg.test.ts checks they are not).
      job.on("opened", ({ path }) => this.#opts.output.written(run, path));
      job.on("line", (line) => {
        if (/\[(error|fatal)\]/.test(line)) this.#log.debug("ffmpeg", { epoch, line: redactPullKey(line).slice(0, 500) });
      });
      job.on("start", ({ pid }) => this.emit("run", { epoch, pid, reason }));
      job.on("exit", (exit) => void this.#onExit(run, exit).finally(finish));
      job.run();
      this.#log.info("ffmpeg started", { epoch, reason });
      return true;
    } finally {
      release();
    }
  }

  async #onExit(run: Run, exit: { code: number | null; signal: string | null; stderrTail: string }): Promise<void> {
    try {
      await this.#opts.output.end(run); // FFmpeg lists its last segment when it exits
    } catch (error) {
      this.#log.error("the run's last output was not taken", { epoch: run.epoch, error });
    }
    const inputThere = this.#opts.hasInput();
    this.#log.info("ffmpeg exited", { epoch: run.epoch, code: exit.code, signal: exit.signal, publisherThere: inputThere, stopped: run.stopping });
    this.emit("exit", { epoch: run.epoch, code: exit.code, signal: exit.signal, planned: run.stopping });
    // A run stopped on purpose is not a crash: whoever stopped it (a resume, the end) decides what comes next.
    if (run.stopping || !inputThere || this.#run !== run || this.#closed) return;
    // FFmpeg died while its input is still there: restart (the output continues after a discontinuity).
    const stderr = redactPullKey(exit.stderrTail);
    if (this.#restarts >= this.#opts.maxRestarts) {
      this.#log.error("ffmpeg keeps failing; ending the stream", { restarts: this.#restarts, stderr: stderr.slice(-2000) });
      this.emit("crash", { epoch: run.epoch, restarts: this.#restarts, restarting: false, code: exit.code, signal: exit.signal, stderrTail: stderr });
      return;
    }
    this.#restarts++;
    this.#log.warn("ffmpeg died while the broadcaster is live; restarting", { restarts: this.#restarts, code: exit.code, signal: exit.signal, stderr: stderr.slice(-1000) });
    this.emit("crash", { epoch: run.epoch, restarts: this.#restarts, restarting: true, code: exit.code, signal: exit.signal, stderrTail: stderr });
    await new Promise((r) => setTimeout(r, restartDelayMs(this.#restarts)));
    // A resume or the end may have taken over during the back-off (it marks this run `stopping`, then waits for
    // this handler to finish before starting its own run): that run is the one that counts, start no other.
    if (run.stopping || this.#run !== run || this.#closed) return;
    void this.#begin("restart");
  }
}
