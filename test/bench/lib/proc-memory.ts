// Memory and CPU of local processes, read from /proc (Linux): how much the Workers runtime holds during a bench,
// and where a phase's CPU went.
import { readdirSync, readFileSync } from "node:fs";

interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  pgrp: number;
  /** user + system CPU time, clock ticks */
  cpuTicks: number;
}

/** Linux clock ticks per second (USER_HZ), 100 on every mainstream kernel configuration. */
const TICKS_PER_S = 100;

function stat(pid: number): ProcStat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // comm may contain spaces and parentheses: it ends at the LAST ')'.
    const close = text.lastIndexOf(")");
    const comm = text.slice(text.indexOf("(") + 1, close);
    const fields = text.slice(close + 2).split(" ");
    // fields[0] is /proc/<pid>/stat field 3 (state); utime and stime are fields 14 and 15.
    return { pid, comm, ppid: Number(fields[1]), pgrp: Number(fields[2]), cpuTicks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null; // gone meanwhile
  }
}

function allProcesses(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (s) out.push(s);
  }
  return out;
}

/** Resident set size in KiB (VmRSS), or 0 when the process is gone. */
export function rssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** `workerd` processes in a process group (wrangler dev started with detached: true leads its own group). */
export function workerdPidsInGroup(pgrp: number): number[] {
  return allProcesses()
    .filter((p) => p.pgrp === pgrp && p.comm === "workerd")
    .map((p) => p.pid);
}

/** `workerd` processes descended from `root` (Miniflare spawns workerd as a child of this process). */
export function workerdPidsUnder(root: number): number[] {
  const procs = allProcesses();
  const children = new Map<number, ProcStat[]>();
  for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const found: number[] = [];
  const walk = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      if (c.comm === "workerd") found.push(c.pid);
      walk(c.pid);
    }
  };
  walk(root);
  return found;
}

/** Summed RSS of `pids`, MiB. */
export function rssMb(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + rssKb(pid), 0) / 1024;
}

/** Open file descriptors of `pids`, summed (sockets count: workerd dies when it runs out). */
export function openFds(pids: number[]): number {
  let n = 0;
  for (const pid of pids) {
    try {
      n += readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      /* gone meanwhile */
    }
  }
  return n;
}

/** CPU seconds (user + system) used so far by `pids`, summed: deltas show where a phase's CPU went. */
export function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) ticks += stat(pid)?.cpuTicks ?? 0;
  return ticks / TICKS_PER_S;
}

/** `root` and every process under it (this bench and what it started: edge runtime, nats-server, bridges). */
export function processTree(root = process.pid): number[] {
  const procs = allProcesses();
  const tree = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of procs) if (!tree.has(p.pid) && tree.has(p.ppid)) (tree.add(p.pid), (grew = true));
  }
  return [...tree];
}

/** The command line of `pid`, arguments joined by spaces ("" once it is gone). */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
  } catch {
    return "";
  }
}

/**
 * CPU seconds of a phase by part: call this before the phase and the function it returns after it. `partOf` names
 * the part a process belongs to from its pid and command line; processes started during the phase count from zero.
 */
export function cpuByPart(partOf: (pid: number, cmd: string) => string, root = process.pid): () => Record<string, number> {
  const before = new Map(processTree(root).map((pid) => [pid, cpuSeconds([pid])]));
  return () => {
    const parts: Record<string, number> = {};
    for (const pid of processTree(root)) {
      const used = cpuSeconds([pid]) - (before.get(pid) ?? 0);
      const part = partOf(pid, commandLine(pid));
      parts[part] = (parts[part] ?? 0) + used;
    }
    return parts;
  };
}
