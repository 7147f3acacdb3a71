// Keeps the parts of the local stack running: a part that crashes is restarted after an exponential backoff
// with jitter, and the others keep running (they reconnect to it). Everything stops only when asked to
// (Ctrl-C) or when a part cannot start at all: its binary cannot be run, or it keeps exiting soon after every
// start, which a restart will not fix (a taken port, a bad setting).
//
// Each part runs in its own process group, so stopping or restarting it also ends what it spawned (wrangler's
// workerd, the media node's FFmpeg), and a crashed part's leftovers cannot hold its port against the restart.

import { type ChildProcess, spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import { backoffDelay } from "../../shared/backoff.ts";

export interface PartSpec {
  name: string;
  command: string;
  args: string[];
  /** added to the supervisor's own environment */
  env?: Record<string, string>;
}

export interface RestartPolicy {
  /** delay before the first restart; doubled for each further one in a row */
  baseDelayMs: number;
  maxDelayMs: number;
  /** each delay is spread by ± this fraction, so parts that died together do not come back in lockstep */
  jitter: number;
  /** a part that ran at least this long was up: its next crash starts the backoff over */
  stableAfterMs: number;
  /** this many exits in a row, each before `stableAfterMs`, mean the part cannot start: give up */
  maxQuickExits: number;
}

export const DEFAULT_POLICY: RestartPolicy = { baseDelayMs: 500, maxDelayMs: 30_000, jitter: 0.2, stableAfterMs: 10_000, maxQuickExits: 5 };

/** The delay before restart number `attempt` (1 for the first in a row). `random` is in [0, 1). Pure. */
export function restartDelayMs(attempt: number, policy: RestartPolicy, random: number): number {
  return backoffDelay(attempt, { baseMs: policy.baseDelayMs, maxMs: policy.maxDelayMs, jitter: policy.jitter, random: () => random });
}

/** What a part's history says to do after it exited unasked. Pure. */
export type ExitDecision = { action: "restart"; attempt: number; quickExits: number } | { action: "give-up"; reason: string };

/**
 * `quickExits`: exits in a row so far that came before `stableAfterMs`; `attempt`: restarts in a row so far.
 * A part that had been up long enough starts over at attempt 1.
 */
export function decideAfterExit(history: { attempt: number; quickExits: number }, ranMs: number, policy: RestartPolicy): ExitDecision {
  const stable = ranMs >= policy.stableAfterMs;
  const quickExits = stable ? 0 : history.quickExits + 1;
  if (quickExits >= policy.maxQuickExits) {
    return { action: "give-up", reason: `exited ${quickExits} times in a row within ${policy.stableAfterMs / 1000} s of starting` };
  }
  return { action: "restart", attempt: stable ? 1 : history.attempt + 1, quickExits };
}

export interface SupervisorEvents {
  /** a part's process is running (`restart` 0 for its first start) */
  started: [{ name: string; pid: number; restart: number }];
  /** a part exited without being asked to */
  crashed: [{ name: string; code: number | null; signal: string | null; ranMs: number }];
  /** the crashed part will be started again after `delayMs` */
  restarting: [{ name: string; delayMs: number; attempt: number }];
  /** a part cannot start at all; the supervisor stops everything */
  "gave-up": [{ name: string; reason: string }];
  /** every part has stopped */
  stopped: [{ code: number }];
}

export interface SupervisorOptions {
  cwd?: string;
  policy?: Partial<RestartPolicy>;
  /** where the supervisor's own lines go (crashes, restarts) */
  log?: (line: string) => void;
  /** where the parts' output goes, each line prefixed with `[name] `; default: this process's stdout/stderr */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** how long a part gets after SIGTERM before its group is killed */
  stopTimeoutMs?: number;
  random?: () => number;
}

interface Part {
  spec: PartSpec;
  child: ChildProcess | undefined;
  startedAt: number;
  restarts: number;
  history: { attempt: number; quickExits: number };
  timer: NodeJS.Timeout | undefined;
}

export class Supervisor extends EventEmitter<SupervisorEvents> {
  readonly policy: RestartPolicy;
  #parts: Part[] = [];
  #stopping: Promise<number> | undefined;
  #opts: SupervisorOptions;

  constructor(opts: SupervisorOptions = {}) {
    super();
    this.#opts = opts;
    this.policy = { ...DEFAULT_POLICY, ...opts.policy };
  }

  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  /** The running process of a part, if it is running. */
  pidOf(name: string): number | undefined {
    const child = this.#parts.find((p) => p.spec.name === name)?.child;
    return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
  }

  /** Starts a part and keeps it running. */
  add(spec: PartSpec): void {
    if (this.#stopping) throw new Error(`supervisor is stopping; not starting ${spec.name}`);
    if (this.#parts.some((p) => p.spec.name === spec.name)) throw new Error(`part ${spec.name} already added`);
    const part: Part = { spec, child: undefined, startedAt: 0, restarts: 0, history: { attempt: 0, quickExits: 0 }, timer: undefined };
    this.#parts.push(part);
    this.#spawn(part);
  }

  #log(line: string): void {
    (this.#opts.log ?? ((l: string) => console.error(l)))(line);
  }

  #spawn(part: Part): void {
    const { spec } = part;
    const child = spawn(spec.command, spec.args, { cwd: this.#opts.cwd, env: { ...process.env, ...spec.env }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    part.child = child;
    part.startedAt = Date.now();
    const prefix = `[${spec.name}] `;
    const pipe = (stream: NodeJS.ReadableStream | null, out: NodeJS.WritableStream) =>
      stream?.on("data", (chunk: Buffer) => out.write(chunk.toString().replace(/^(?=.)/gm, prefix)));
    pipe(child.stdout, this.#opts.stdout ?? process.stdout);
    pipe(child.stderr, this.#opts.stderr ?? process.stderr);
    child.once("spawn", () => this.emit("started", { name: spec.name, pid: child.pid!, restart: part.restarts }));
    // A binary that cannot be run (not installed, not executable) will not become runnable by retrying.
    child.on("error", (error) => {
      if (child.pid !== undefined || this.#stopping) return; // errors of a running process (a failed kill) are not this
      this.#giveUp(part, `could not run ${spec.command}: ${error.message}`);
    });
    child.once("exit", (code, signal) => this.#onExit(part, child, code, signal));
  }

  #onExit(part: Part, child: ChildProcess, code: number | null, signal: string | null): void {
    if (part.child !== child || this.#stopping) return;
    const { name } = part.spec;
    // What the part spawned dies with it, so nothing of it holds its port or files against the restart.
    signalGroup(child, "SIGKILL");
    const ranMs = Date.now() - part.startedAt;
    this.emit("crashed", { name, code, signal, ranMs });
    const decision = decideAfterExit(part.history, ranMs, this.policy);
    if (decision.action === "give-up") return this.#giveUp(part, `${decision.reason} (last: ${signal ?? `code ${code}`})`);
    part.history = { attempt: decision.attempt, quickExits: decision.quickExits };
    const delayMs = restartDelayMs(decision.attempt, this.policy, (this.#opts.random ?? Math.random)());
    this.#log(`[start] ${name} exited (${signal ?? `code ${code}`}) after ${(ranMs / 1000).toFixed(1)} s; restarting it in ${(delayMs / 1000).toFixed(1)} s (restart ${decision.attempt} in a row); the other parts keep running`);
    this.emit("restarting", { name, delayMs, attempt: decision.attempt });
    part.timer = setTimeout(() => {
      part.timer = undefined;
      if (this.#stopping) return;
      part.restarts++;
      this.#spawn(part);
      part.child!.once("spawn", () => this.#log(`[start] ${name} restarted (pid ${part.child?.pid})`));
    }, delayMs);
  }

  #giveUp(part: Part, reason: string): void {
    if (this.#stopping) return;
    this.#log(`[start] ${part.spec.name} cannot start: ${reason}; stopping everything`);
    this.emit("gave-up", { name: part.spec.name, reason });
    void this.stop(1);
  }

  /**
   * Stops every part, the last added first (the media node and bridges flush to NATS and the edge before
   * those go), each with SIGTERM and up to `stopTimeoutMs` before its group is killed. Resolves with `code`.
   */
  stop(code = 0): Promise<number> {
    this.#stopping ??= (async () => {
      for (const part of this.#parts) clearTimeout(part.timer);
      for (const { child } of [...this.#parts].reverse()) {
        if (!child || child.pid === undefined) continue;
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((r) => child.once("exit", r));
          signalGroup(child, "SIGTERM");
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, this.#opts.stopTimeoutMs ?? 15_000)))]);
          clearTimeout(timer);
        }
        signalGroup(child, "SIGKILL"); // stragglers in the group
      }
      this.emit("stopped", { code });
      return code;
    })();
    return this.#stopping;
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* group already gone */
  }
}
