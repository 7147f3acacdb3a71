// The ONE adapter over fluent-ffmpeg (archived upstream in 2025; kept behind this file so it can be swapped
// for a plain spawn). Its traps, contained here:
// - outputOptions() splits a lone "flag value" string on its first space: we always pass several arguments at
//   once, which it takes verbatim (so `-var_stream_map "v:0,a:0 v:1,a:1"` stays one argument);
// - its `progress` event runs ffprobe on the input (an extra RTMP play): we parse stderr ourselves;
// - kill() defaults to SIGKILL, which leaves half-written segments and playlists: stop() sends SIGINT so FFmpeg
//   finishes the current segment, and escalates to SIGKILL only after a grace period;
// - it spawns asynchronously (path lookup, capability checks) and kill() is a silent no-op until then: a stop or
//   kill asked for before the process exists is remembered and sent from the 'start' handler.
//
// What FFmpeg writes is reported as it happens: at `-loglevel info` it logs every file it opens for writing
// (`Opening '<path>' for writing`), which is the cue that a segment or playlist has just been finished.
//
// A low-latency plan writes each rendition to an extra pipe (fd 3, 4, ...), which fluent-ffmpeg cannot open:
// such a plan is spawned here directly, with the same events, stop and kill as the fluent-ffmpeg path.

import { type ChildProcess, spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import type { Readable } from "node:stream";
import ffmpeg from "fluent-ffmpeg";
import { type FfmpegPlan, type LowLatencyPlan, toArgv } from "./args.ts";
import { type Progress, parseProgressLine } from "./progress.ts";

export interface FfmpegJobEvents {
  start: [{ pid: number | undefined; commandLine: string }];
  progress: [Progress];
  /** every stderr line that is not a stats line (warnings, errors) */
  line: [string];
  /** FFmpeg opened a file for writing (logged at -loglevel info and above): a segment or playlist is being written */
  opened: [{ path: string }];
  /** the process is gone: code 0 = clean end; `signal` when killed */
  exit: [{ code: number | null; signal: string | null; error?: Error; stderrTail: string }];
}

export class FfmpegJob extends EventEmitter<FfmpegJobEvents> {
  readonly #command: ffmpeg.FfmpegCommand | undefined;
  /** a plan with extra output pipes: spawned here, not through fluent-ffmpeg */
  readonly #spawnPlan: { argv: string[]; pipes: number; ffmpegPath: string } | undefined;
  #child: ChildProcess | undefined;
  #outputs: Readable[] = [];
  readonly #resolveExit: () => void;
  #pid: number | undefined;
  #exited = false;
  #started = false;
  /** a stop()/kill() that came before the process existed: sent as soon as it does */
  #pending: { signal: "SIGINT"; graceMs: number } | { signal: "SIGKILL" } | undefined;
  #killTimer: NodeJS.Timeout | undefined;
  #tail: string[] = [];
  readonly exited: Promise<void>;

  constructor(plan: FfmpegPlan, opts: { ffmpegPath?: string } = {}) {
    super();
    let resolveExit: () => void;
    this.exited = new Promise((r) => (resolveExit = r));
    this.#resolveExit = () => resolveExit();
    if (isPipePlan(plan)) {
      this.#spawnPlan = { argv: toArgv(plan), pipes: plan.pipes.length, ffmpegPath: opts.ffmpegPath ?? "ffmpeg" };
      return;
    }
    // Keep little output in memory (0 would mean unlimited); we keep our own tail of stderr.
    const command = ffmpeg({ stdoutLines: 5 } as ffmpeg.FfmpegCommandOptions);
    if (opts.ffmpegPath) command.setFfmpegPath(opts.ffmpegPath);
    command.input(plan.input);
    if (plan.inputArgs.length) command.inputOptions(...pad(plan.inputArgs));
    command.outputOptions(...pad(plan.outputArgs));
    command.output(plan.output);
    this.#command = command;
    command.on("start", (commandLine: string) => this.#onStart((command as unknown as { ffmpegProc?: { pid?: number } }).ffmpegProc?.pid, commandLine));
    command.on("stderr", (line: string) => this.#onLine(line));
    command.on("end", () => this.#finish(0, null));
    command.on("error", (error: Error) => {
      const m = error.message.match(/ffmpeg (?:exited with code (\d+)|was killed with signal (\w+))/);
      this.#finish(m?.[1] ? Number(m[1]) : null, m?.[2] ?? null, error);
    });
  }

  #onStart(pid: number | undefined, commandLine: string): void {
    this.#pid = pid;
    this.#started = true;
    this.emit("start", { pid, commandLine });
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending?.signal === "SIGKILL") this.#signal("SIGKILL");
    else if (pending) this.#interrupt(pending.graceMs);
  }

  #onLine(line: string): void {
    const progress = parseProgressLine(line);
    if (progress) return void this.emit("progress", progress);
    const opened = openedForWriting(line);
    if (opened) this.emit("opened", { path: opened });
    this.#tail.push(line);
    if (this.#tail.length > 40) this.#tail.shift();
    this.emit("line", line);
  }

  #finish(code: number | null, signal: string | null, error?: Error): void {
    if (this.#exited) return;
    this.#exited = true;
    clearTimeout(this.#killTimer);
    this.emit("exit", { code, signal, ...(error ? { error } : {}), stderrTail: this.#tail.join("\n") });
    this.#resolveExit();
  }

  run(): this {
    if (this.#spawnPlan) this.#spawn(this.#spawnPlan);
    else this.#command!.run();
    return this;
  }

  /**
   * The extra output pipes of a low-latency plan (fd 3 first), readable once run() was called; empty for a plan
   * that writes files. They end when FFmpeg closes them (at its exit).
   */
  get outputs(): Readable[] {
    return this.#outputs;
  }

  #spawn(plan: { argv: string[]; pipes: number; ffmpegPath: string }): void {
    let child: ChildProcess;
    try {
      child = spawn(plan.ffmpegPath, plan.argv, { stdio: ["ignore", "ignore", "pipe", ...Array.from({ length: plan.pipes }, () => "pipe" as const)] });
    } catch (error) {
      return this.#finish(null, null, error as Error);
    }
    this.#child = child;
    this.#outputs = child.stdio.slice(3) as Readable[];
    let rest = "";
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      const lines = (rest + chunk).split(/\r\n|\r|\n/);
      rest = lines.pop() ?? "";
      for (const line of lines) if (line) this.#onLine(line);
    });
    child.once("error", (error) => this.#finish(null, null, error));
    child.once("spawn", () => this.#onStart(child.pid, [plan.ffmpegPath, ...plan.argv].join(" ")));
    child.once("close", (code, signal) => {
      if (rest) this.#onLine(rest);
      this.#finish(code, signal, code === 0 ? undefined : new Error(signal ? `ffmpeg was killed with signal ${signal}` : `ffmpeg exited with code ${code}`));
    });
  }

  #signal(signal: NodeJS.Signals): void {
    if (this.#child) this.#child.kill(signal);
    else this.#command?.kill(signal);
  }

  get pid(): number | undefined {
    return this.#pid;
  }

  get running(): boolean {
    return !this.#exited;
  }

  /** SIGINT (FFmpeg closes the current segment and playlist), SIGKILL after `graceMs`. Resolves on exit. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.#exited) return;
    // The grace period counts from the SIGINT, so a process that spawns late is not killed mid-encode.
    if (!this.#started) this.#pending ??= { signal: "SIGINT", graceMs };
    else if (this.#killTimer === undefined) this.#interrupt(graceMs);
    await this.exited;
  }

  /** SIGKILL at once (fault injection in tests, last resort on shutdown). */
  async kill(): Promise<void> {
    if (this.#exited) return;
    if (this.#started) this.#signal("SIGKILL");
    else this.#pending = { signal: "SIGKILL" };
    await this.exited;
  }

  #interrupt(graceMs: number): void {
    this.#signal("SIGINT");
    this.#killTimer = setTimeout(() => this.#signal("SIGKILL"), graceMs);
  }
}

/**
 * fluent-ffmpeg runs `ffmpeg -formats` before the first command of a process (its format check, cached for
 * the process): doing it at start keeps that spawn (a few hundred ms on a loaded machine) off the first
 * stream's time to live. Resolves either way; a broken FFmpeg shows up in the first run's error.
 */
export function warmUp(ffmpegPath?: string): Promise<void> {
  return new Promise((resolve) => {
    const command = ffmpeg();
    if (ffmpegPath) command.setFfmpegPath(ffmpegPath);
    command.getAvailableFormats(() => resolve());
  });
}

function isPipePlan(plan: FfmpegPlan): plan is LowLatencyPlan {
  return Array.isArray((plan as Partial<LowLatencyPlan>).pipes) && (plan as LowLatencyPlan).pipes.length > 0;
}

const OPENED_FOR_WRITING = /Opening '(.+)' for writing$/;

/** The file FFmpeg says it opened for writing in one of its stderr lines, if that is what the line says. Pure. */
export function openedForWriting(line: string): string | undefined {
  return OPENED_FOR_WRITING.exec(line)?.[1];
}

/**
 * fluent-ffmpeg takes a multi-argument call verbatim but splits a single argument on its first space, so a
 * one-element list is given with a harmless no-op companion. Every plan has several arguments; this is a guard.
 */
function pad(args: string[]): string[] {
  return args.length === 1 ? [...args, "-hide_banner"] : args;
}
