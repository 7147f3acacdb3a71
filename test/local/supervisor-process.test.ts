// The local stack's supervisor against real processes: a SIGKILLed part comes back while another keeps
// running (same pid), what a crashed part spawned dies before the restart, and a part that cannot start at all
// stops everything.
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { Supervisor, type SupervisorEvents } from "../../deploy/local/supervisor.ts";
import { waitFor } from "../helpers/wait.ts";

const NODE = process.execPath;
/** A part that runs until it is signalled. */
const idle = (name: string) => ({ name, command: NODE, args: ["-e", "setInterval(() => {}, 1000); console.log('up')"] });

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function next<K extends keyof SupervisorEvents>(s: Supervisor, event: K, match: (e: SupervisorEvents[K][0]) => boolean = () => true, timeoutMs = 15_000): Promise<SupervisorEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${String(event)}' event within ${timeoutMs} ms`)), timeoutMs);
    const on = (e: SupervisorEvents[K][0]) => {
      if (!match(e)) return;
      clearTimeout(timer);
      s.off(event, on as never);
      resolve(e);
    };
    s.on(event, on as never);
  });
}

let supervisors: Supervisor[] = [];
function supervisor(policy: ConstructorParameters<typeof Supervisor>[0] = {}) {
  const logs: string[] = [];
  const out = new PassThrough();
  let output = "";
  out.on("data", (c: Buffer) => (output += c.toString()));
  const s = new Supervisor({ log: (l) => logs.push(l), stdout: out, stderr: out, stopTimeoutMs: 5_000, ...policy, policy: { baseDelayMs: 100, maxDelayMs: 1_000, stableAfterMs: 10_000, maxQuickExits: 3, ...policy.policy } });
  supervisors.push(s);
  return { s, logs, output: () => output };
}

afterEach(async () => {
  await Promise.all(supervisors.map((s) => s.stop()));
  supervisors = [];
});

describe("Supervisor with real processes", () => {
  it("restarts a SIGKILLed part with a restart event and a log line while the other part keeps running", async () => {
    const { s, logs, output } = supervisor();
    const firstA = next(s, "started", (e) => e.name === "a");
    const firstB = next(s, "started", (e) => e.name === "b");
    s.add(idle("a"));
    s.add(idle("b"));
    const [a, b] = await Promise.all([firstA, firstB]);
    await waitFor("both parts' output", () => (output().match(/^\[(a|b)\] up$/gm) ?? []).length === 2);

    const crashed = next(s, "crashed", (e) => e.name === "a");
    const restarting = next(s, "restarting", (e) => e.name === "a");
    const restarted = next(s, "started", (e) => e.name === "a" && e.restart === 1);
    process.kill(a.pid, "SIGKILL");
    expect(await crashed).toMatchObject({ name: "a", signal: "SIGKILL" });
    expect(await restarting).toMatchObject({ name: "a", attempt: 1 });
    const again = await restarted;
    expect(again.pid).not.toBe(a.pid);
    expect(alive(again.pid)).toBe(true);
    // the other part was never touched
    expect(alive(b.pid)).toBe(true);
    expect(s.pidOf("b")).toBe(b.pid);
    expect(s.stopping).toBe(false);
    expect(logs.join("\n")).toMatch(/\[start\] a exited \(SIGKILL\) after [\d.]+ s; restarting it in [\d.]+ s \(restart 1 in a row\); the other parts keep running/);

    const stopped = next(s, "stopped");
    expect(await s.stop(0)).toBe(0);
    expect((await stopped).code).toBe(0);
    expect(alive(again.pid) || alive(b.pid)).toBe(false);
  });

  it("kills what a crashed part spawned before starting it again", async () => {
    const { s, output } = supervisor();
    const script = "const c = require('node:child_process').spawn('sleep', ['1000'], { stdio: 'ignore' }); console.log('grandchild ' + c.pid); setInterval(() => {}, 1000)";
    const started = next(s, "started");
    s.add({ name: "parent", command: NODE, args: ["-e", script] });
    const { pid } = await started;
    const grandchild = Number((await waitFor("the grandchild's pid", () => output().match(/grandchild (\d+)/)))[1]);
    expect(alive(grandchild)).toBe(true);
    const restarted = next(s, "started", (e) => e.restart === 1);
    process.kill(pid, "SIGKILL"); // the leader only, as a crash would: its child is left behind
    await restarted;
    await waitFor("the crashed part's grandchild to be gone", () => !alive(grandchild), 5_000);
  });

  it("stops everything when a part's command cannot be run at all", async () => {
    const { s, logs } = supervisor();
    const b = next(s, "started", (e) => e.name === "b");
    s.add(idle("b"));
    const { pid } = await b;
    const gaveUp = next(s, "gave-up");
    const stopped = next(s, "stopped");
    s.add({ name: "missing", command: "/nonexistent/pulsecast-no-such-binary", args: [] });
    expect(await gaveUp).toMatchObject({ name: "missing", reason: expect.stringMatching(/could not run \/nonexistent\/pulsecast-no-such-binary: .*ENOENT/) });
    expect((await stopped).code).toBe(1);
    expect(alive(pid)).toBe(false);
    expect(logs.join("\n")).toMatch(/\[start\] missing cannot start: .*; stopping everything/);
  });

  it("gives up on a part that exits right after every start, after backing off, and stops the others", async () => {
    const { s } = supervisor();
    const b = next(s, "started", (e) => e.name === "b");
    s.add(idle("b"));
    const { pid } = await b;
    const restarts: number[] = [];
    s.on("restarting", (e) => restarts.push(e.delayMs));
    const gaveUp = next(s, "gave-up");
    const stopped = next(s, "stopped");
    s.add({ name: "flaky", command: NODE, args: ["-e", "console.error('port taken'); process.exit(3)"] });
    expect(await gaveUp).toMatchObject({ name: "flaky", reason: expect.stringContaining("exited 3 times in a row within 10 s of starting (last: code 3)") });
    expect(restarts).toHaveLength(2);
    expect(restarts[1]!).toBeGreaterThan(restarts[0]!);
    expect((await stopped).code).toBe(1);
    expect(alive(pid)).toBe(false);
  });
});

