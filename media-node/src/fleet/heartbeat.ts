// The node's heartbeat: every MEDIA_HEARTBEAT_INTERVAL_MS, one node.heartbeat event (shared/events/fleet.ts) on
// plain NATS with its health, load and the streams it carries. The NATS -> HTTP bridge forwards it to the edge,
// whose Fleet object routes broadcasters by it. A plain publish, not the outbox: a heartbeat is worth something
// only now, and one lost (NATS away) is replaced by the next. A state change (draining, a probe failing) goes out
// at once instead of waiting for the next beat.

import { cpus } from "node:os";
import type { NatsConnection } from "nats";
import { makeEvent } from "../../../shared/envelope.ts";
import type { NodeHeartbeat } from "../../../shared/events/fleet.ts";
import { HEARTBEAT_SUBJECT } from "../bus/subjects.ts";
import { encodeEvent } from "../bus/publish.ts";
import type { Logger } from "../log.ts";

export type HeartbeatLoad = Pick<NodeHeartbeat, "status" | "failing" | "liveStreams" | "maxLiveStreams" | "streams" | "jobs" | "maxJobs">;

export interface HeartbeatOptions {
  nodeId: string;
  bootId: string;
  rtmpServer: string;
  intervalMs: number;
  connection(): NatsConnection | undefined;
  /** the node's state now */
  load(): Promise<HeartbeatLoad>;
  log: Logger;
}

/** Busy share of every CPU of the host since the previous call (0..1), from the kernel's per-CPU times. */
export function cpuSampler(): () => number {
  const totals = () => cpus().reduce((acc, c) => ({ idle: acc.idle + c.times.idle, all: acc.all + c.times.user + c.times.nice + c.times.sys + c.times.idle + c.times.irq }), { idle: 0, all: 0 });
  let last = totals();
  return () => {
    const now = totals();
    const all = now.all - last.all;
    const busy = all > 0 ? 1 - (now.idle - last.idle) / all : 0;
    last = now;
    return Math.min(1, Math.max(0, Math.round(busy * 1000) / 1000));
  };
}

export interface Heartbeats {
  /** sends one now (a state change); resolves once handed to NATS (or skipped while it is away) */
  beat(): Promise<void>;
  stop(): void;
  /** heartbeats sent so far */
  readonly sent: number;
}

export function startHeartbeats(o: HeartbeatOptions): Heartbeats {
  const cpu = cpuSampler();
  let seq = 0;
  let sent = 0;
  let failing = false;
  let beating: Promise<void> | undefined;
  const beat = async () => {
    const nc = o.connection();
    if (!nc || nc.isClosed()) return;
    try {
      const load = await o.load();
      const data: NodeHeartbeat = { nodeId: o.nodeId, rtmpServer: o.rtmpServer, ...load, cpu: cpu(), intervalMs: o.intervalMs, seq: seq++, bootId: o.bootId };
      const event = makeEvent("node.heartbeat", data, { source: `media-node/${o.nodeId}`, subject: `node/${o.nodeId}` });
      nc.publish(HEARTBEAT_SUBJECT, encodeEvent(event));
      sent++;
      if (failing) o.log.info("heartbeats going out again");
      failing = false;
    } catch (error) {
      if (!failing) o.log.warn("heartbeat not sent", { error: (error as Error).message });
      failing = true;
    }
  };
  const once = () => (beating ??= beat().finally(() => (beating = undefined)));
  const timer = setInterval(() => void once(), o.intervalMs);
  timer.unref();
  void once();
  return {
    beat: once,
    stop: () => clearInterval(timer),
    get sent() {
      return sent;
    },
  };
}
