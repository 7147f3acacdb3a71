// The transcoder of one stream: FFmpeg runs, one after the other, each writing into its own folder. The first
// run, a restart after a crash (with back-off, up to a budget), and a new run when the input comes back (a
// broadcaster's reconnect) are decided here; what FFmpeg is told is args.ts (pure), how the process is handled
// is ffmpeg.ts (the one fluent-ffmpeg adapter), and what becomes of its output is the RunOutput's business.
//
// Invariants:
// - at most one run takes input at a time. A run normally starts only after the previous one has exited and its
//   output has been handed over; a hand-over (the ladder changed) ends the old run's input instead, lets it
//   encode what it already received while the new run starts, and the output keeps the runs in order;
// - a run stopped on purpose (a resume, the end, the fallback after the input went away) is never a crash.

import { EventEmitter } from "node:events";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import type { Logger } from "../log.ts";
import type { FfmpegPlan } from "./args.ts";
import { FfmpegJob } from "./ffmpeg.ts";
import type { Progress } from "./progress.ts";
import { backoffCap } from "../../../shared/backoff.ts";

/** start: the first run; restart: after a crash; resume: the input came back; shed: the ladder changed */
export type RunReason = "start" | "restart" | "resume" | "shed";

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
  /** the run writes to pipes (a low-latency plan): its output streams, in the plan's pipe order, as it starts */
  attach?(run: TranscodeRun, outputs: Readable[]): void;
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
  startRun(reason: "start" | "resume" | "shed", opts?: { handOver?: HandOver }): Promise<boolean>;
  /**
   * The input went away: the run encodes what it already received and exits by itself. It is stopped only when
   * it makes no progress for `stallMs`, or when `maxMs` have passed (logged as a warning: the end is cut).
   */
  inputEnded(bounds: DrainBounds): void;
  /**
   * Stops for good; no run starts after. `drain`: a run that is draining its input (inputEnded) is left to
   * finish within its bounds; otherwise (and without `drain`) it is stopped gracefully at once. Resolves when
   * its output is handed over.
   */
  close(opts?: { drain?: boolean }): Promise<void>;
  /** the process of the current run, while it runs */
  readonly pid: number | undefined;
  on<E extends keyof TranscoderEvents>(event: E, listener: (...args: TranscoderEvents[E]) => void): this;
  off<E extends keyof TranscoderEvents>(event: E, listener: (...args: TranscoderEvents[E]) => void): this;
}

/**
 * A new run takes over from a running one without losing what the old one received but has not encoded yet
 * (an overloaded ladder is behind by seconds): the new run starts at once, and as soon as it receives its input
 * (its first progress; at the latest after HANDOVER_CUT_MS or when it exits) `cutInput` ends the old run's
 * input (given the old run's plan input), and the old run drains within `bounds`. Both runs hold the moment of
 * the cut, so nothing in between is lost (what both hold is in the recording twice, after a discontinuity).
 */
export interface HandOver {
  cutInput(input: string): void;
  bounds: DrainBounds;
}

/** A hand-over cuts the old run's input at the latest this long after the new run started. */
export const HANDOVER_CUT_MS = 5000;

/** How long a run whose input ended may keep encoding what it received. */
export interface DrainBounds {
  /** stopped when FFmpeg's encoded media time has not advanced for this long */
  stallMs: number;
  /** stopped after this long whatever it is doing (a warning says the recording's end is cut) */
  maxMs: number;
}

export interface FfmpegTranscoderOptions {
  ffmpegPath: string;
  /** run N writes into `<workRoot>/e<N>` */
  workRoot: string;
  /**
   * the first run's number (default 0): a broadcast continued from another node starts after the runs that node
   * stored, so no object name of theirs is reused
   */
  firstEpoch?: number;
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
  /** the plan's input (the pull URL of a live run) */
  input: string;
  /** resolves when the exit is handled: output handed over, restart decided */
  finished: Promise<void>;
  /** stopped on purpose: its exit is not a crash and must not trigger a restart */
  stopping: boolean;
  /** the input ended and the run is encoding what it received (inputEnded) */
  draining: boolean;
  /** media seconds FFmpeg reported encoded, and when that last advanced */
  encodedS: number;
  progressAt: number;
}

export class FfmpegTranscoder extends EventEmitter<TranscoderEvents> implements Transcoder {
  readonly #opts: FfmpegTranscoderOptions;
  readonly #log: Logger;
  #run: Run | undefined;
  #epoch = 0;
  #restarts = 0;
  #closed = false;
  /** earlier runs still encoding what they received after a hand-over */
  readonly #draining = new Set<Run>();
  /** serialises run changes: never two FFmpeg processes, even when a resume races a restart */
  #lock: Promise<void> = Promise.resolve();

  constructor(opts: FfmpegTranscoderOptions) {
    super();
    this.#opts = opts;
    this.#log = opts.log;
    this.#epoch = opts.firstEpoch ?? 0;
  }

  get pid(): number | undefined {
    return this.#run?.job.running ? this.#run.job.pid : undefined;
  }

  startRun(reason: "start" | "resume" | "shed", opts: { handOver?: HandOver } = {}): Promise<boolean> {
    if (reason === "resume") this.#restarts = 0;
    return this.#begin(reason, opts.handOver);
  }

  inputEnded(bounds: DrainBounds): void {
    const run = this.#run;
    if (run) this.#drain(run, bounds);
  }

  #drain(run: Run, bounds: DrainBounds): void {
    if (!run.job.running || run.draining) return;
    run.draining = true;
    const since = Date.now();
    run.progressAt = since;
    // An overloaded ladder is behind live: what it has received but not encoded yet is part of the broadcast,
    // so the run is left to encode it for as long as it makes progress (bounded), never for a fixed time.
    const check = setInterval(() => {
      if (!run.job.running) return clearInterval(check);
      const now = Date.now();
      if (now - since >= bounds.maxMs) {
        this.#log.warn("ffmpeg still encoding what the broadcaster sent when the drain bound was reached; the recording's end is cut", {
          epoch: run.epoch,
          encodedS: run.encodedS,
          drainedMs: now - since,
          maxMs: bounds.maxMs,
        });
      } else if (now - run.progressAt >= bounds.stallMs) {
        this.#log.warn("ffmpeg made no progress after its input ended; stopping it (anything it still held is not recorded)", { epoch: run.epoch, encodedS: run.encodedS, stalledMs: now - run.progressAt });
      } else return;
      clearInterval(check);
      run.stopping = true;
      void run.job.stop();
    }, Math.min(250, bounds.stallMs));
    void run.job.exited.then(() => clearInterval(check));
  }

  async close(opts: { drain?: boolean } = {}): Promise<void> {
    this.#closed = true;
    // Wait for any run being started, then stop FFmpeg (SIGINT: it closes the segment in progress) unless it is
    // draining and may finish (its drain bounds stop it if it does not).
    await this.#lock;
    const runs = [...this.#draining, ...(this.#run ? [this.#run] : [])];
    await Promise.all(
      runs.map(async (run) => {
        if (!(opts.drain && run.draining)) {
          run.stopping = true;
          await run.job.stop();
        }
        await run.finished;
      }),
    );
  }

  async #begin(reason: RunReason, handOver?: HandOver): Promise<boolean> {
    const previous = this.#lock;
    let release!: () => void;
    this.#lock = new Promise((r) => (release = r));
    await previous;
    try {
      const old = this.#run;
      let cutOld: ((job: FfmpegJob) => void) | undefined;
      // A hand-over when the input is gone (the broadcaster just left): the old run is draining; leave it be.
      if (handOver && (this.#closed || !this.#opts.hasInput())) return false;
      if (old && handOver && old.job.running && !this.#closed && this.#opts.hasInput()) {
        // The old run keeps what it received: once the new run has its input, the old one's input ends and it
        // encodes the rest and exits by itself.
        old.stopping = true;
        this.#draining.add(old);
        void old.finished.then(() => this.#draining.delete(old));
        cutOld = (job) => {
          let done = false;
          const cut = () => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            handOver.cutInput(old.input);
            this.#drain(old, handOver.bounds);
          };
          const timer = setTimeout(cut, HANDOVER_CUT_MS);
          job.once("progress", cut);
          job.once("exit", cut);
        };
      } else if (old) {
        old.stopping = true;
        await old.job.stop();
        await old.finished;
      }
      if (this.#closed || !this.#opts.hasInput()) return false;
      const epoch = this.#epoch++;
      const dir = join(this.#opts.workRoot, `e${epoch}`);
      await mkdir(dir, { recursive: true });
      const plan = this.#opts.plan(dir);
      const job = new FfmpegJob(plan, { ffmpegPath: this.#opts.ffmpegPath });
      cutOld?.(job);
      let finish!: () => void;
      const run: Run = { epoch, dir, reason, job, input: plan.input, finished: new Promise((r) => (finish = r)), stopping: false, draining: false, encodedS: 0, progressAt: Date.now() };
      await this.#opts.output.begin(run);
      this.#run = run;
      job.on("progress", (p) => {
        if (p.timeS !== undefined && p.timeS > run.encodedS) {
          run.encodedS = p.timeS;
          run.progressAt = Date.now();
        }
        // the current run's pace only (an older one may still be draining after a hand-over)
        if (this.#run === run) this.emit("progress", p);
      });
      // The output's cue (FFmpeg logs the files it opens at -loglevel info, which args.ts asks for): without it
      // a run's segments would only be taken when it ends (hls-publisher.ffmpeg.test.ts checks they are not).
      job.on("opened", ({ path }) => this.#opts.output.written(run, path));
      job.on("line", (line) => {
        if (/\[(error|fatal)\]/.test(line)) this.#log.debug("ffmpeg", { epoch, line: redactPullKey(line).slice(0, 500) });
      });
      job.on("start", ({ pid }) => this.emit("run", { epoch, pid, reason }));
      job.on("exit", (exit) => void this.#onExit(run, exit).finally(finish));
      job.run();
      if (job.outputs.length > 0) this.#opts.output.attach?.(run, job.outputs);
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
