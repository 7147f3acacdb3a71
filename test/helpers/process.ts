import { type ChildProcess, spawn, type SpawnOptions } from "node:child_process";
import { once } from "node:events";

/**
 * A child started in its own process group, so that stopping it also stops whatever it spawned
 * (npx -> wrangler -> workerd would otherwise be orphaned). Output is kept for error messages.
 */
export interface GroupProcess {
  child: ChildProcess;
  /** everything written to stdout and stderr so far */
  output(): string;
  /** resolves when `pattern` appears in the output; rejects if the process exits first or on timeout */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM to the whole group, SIGKILL after `graceMs`; resolves when the leader has exited */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL to the whole group at once (fault injection) */
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

export function spawnGroup(command: string, args: string[], options: SpawnOptions = {}): GroupProcess {
  const child = spawn(command, args, { ...options, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    out += chunk.toString();
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
    for (const w of waiters) w();
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });
  let done = false;
  void exited.then(() => {
    done = true;
    for (const w of waiters) w();
  });

  const signalGroup = (signal: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      /* group already gone */
    }
  };

  return {
    child,
    exited,
    output: () => out,
    waitForOutput(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = out.match(pattern);
          if (match) return finish(() => resolve(match));
          if (done) return finish(() => reject(new Error(`${command} exited before printing ${pattern}:\n${out.slice(-4000)}`)));
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`timed out waiting for ${pattern} from ${command}:\n${out.slice(-4000)}`))), timeoutMs);
        const finish = (fn: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          fn();
        };
        waiters.add(check);
        check();
      });
    },
    async stop(graceMs = 5_000) {
      if (done) return;
      signalGroup("SIGTERM");
      const timer = setTimeout(() => signalGroup("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
      signalGroup("SIGKILL"); // stragglers in the group
    },
    async kill() {
      signalGroup("SIGKILL");
      await exited;
    },
  };
}

/** Runs a command to completion, returning its exit code and output. */
export async function run(command: string, args: string[], options: SpawnOptions = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr };
}

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
export function processAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
