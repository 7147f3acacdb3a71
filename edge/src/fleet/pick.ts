// Which media node a broadcaster publishes to, from the nodes' latest heartbeats. Pure, so the rules are tested
// without a runtime; the Fleet object (fleet-object.ts) keeps the state and calls these.
//
// For a stream, in order:
// 1. the node whose heartbeat lists the stream live (its owner: a reconnect there resumes at once, and a draining
//    node still finishes its own broadcasts), when that node is fresh and not unhealthy;
// 2. the node this stream was handed a moment ago (FLEET_ASSIGNMENT_TTL_MS), while it is still eligible, so
//    every view of one stream shows one URL and a broadcaster who asks twice is not counted twice;
// 3. the least loaded eligible node: fresh, `ready`, with a free stream slot once the streams it was handed but
//    does not show live yet are counted. Load is the share of its stream slots in use (live streams are what a
//    media node's capacity is set in: MEDIA_MAX_LIVE_STREAMS); CPU, then VOD jobs, break ties, then the node id.
// No eligible node: null, and the caller hands out its configured RTMP_BASE_URL. A broadcaster that could not
// reach a node says so when it asks again (`avoid`): that node is left out, whatever its last heartbeat said.

import type { NodeHeartbeat } from "../../../shared/events/fleet.ts";

export interface NodeRecord {
  hb: NodeHeartbeat;
  /** when the object received the heartbeat (its own clock: node clocks may differ) */
  receivedAt: number;
  /** the heartbeat's event time, to order heartbeats of different boots */
  eventAt: number;
}

export interface Assignment {
  nodeId: string;
  at: number;
}

export interface FleetRules {
  /** a node whose last heartbeat is older than this is out */
  nodeTimeoutMs: number;
  /** an assignment counts against its node for this long (or until the node shows the stream live) */
  assignmentTtlMs: number;
}

export interface Pick {
  nodeId: string;
  rtmpServer: string;
  /** why this node: `owner` (stream live there), `assigned` (handed out a moment ago), `least-loaded` */
  why: "owner" | "assigned" | "least-loaded";
}

/** Is this heartbeat newer than what is kept for its node? (Heartbeats may arrive out of order or twice.) */
export function isNewer(kept: NodeRecord | undefined, hb: NodeHeartbeat, eventAt: number): boolean {
  if (!kept) return true;
  if (kept.hb.bootId === hb.bootId) return hb.seq > kept.hb.seq;
  return eventAt >= kept.eventAt;
}

export const fresh = (n: NodeRecord, now: number, rules: FleetRules) => now - n.receivedAt <= rules.nodeTimeoutMs;

/** Streams handed to `nodeId` within the TTL that its heartbeat does not show live yet. */
export function pendingFor(nodeId: string, node: NodeRecord, assignments: ReadonlyMap<string, Assignment>, now: number, rules: FleetRules): number {
  let n = 0;
  for (const [streamId, a] of assignments) {
    if (a.nodeId === nodeId && now - a.at <= rules.assignmentTtlMs && !node.hb.streams.includes(streamId)) n++;
  }
  return n;
}

export interface NodeLoad {
  nodeId: string;
  eligible: boolean;
  /** live streams plus streams handed to it not yet live there */
  streams: number;
  load: number;
}

export function loadOf(node: NodeRecord, assignments: ReadonlyMap<string, Assignment>, now: number, rules: FleetRules): NodeLoad {
  const streams = node.hb.liveStreams + pendingFor(node.hb.nodeId, node, assignments, now, rules);
  const eligible = fresh(node, now, rules) && node.hb.status === "ready" && streams < node.hb.maxLiveStreams;
  return { nodeId: node.hb.nodeId, eligible, streams, load: streams / node.hb.maxLiveStreams };
}

function compare(a: { n: NodeRecord; l: NodeLoad }, b: { n: NodeRecord; l: NodeLoad }): number {
  if (a.l.load !== b.l.load) return a.l.load - b.l.load;
  if (a.n.hb.cpu !== b.n.hb.cpu) return a.n.hb.cpu - b.n.hb.cpu;
  const ja = a.n.hb.maxJobs ? a.n.hb.jobs / a.n.hb.maxJobs : 0;
  const jb = b.n.hb.maxJobs ? b.n.hb.jobs / b.n.hb.maxJobs : 0;
  if (ja !== jb) return ja - jb;
  return a.n.hb.nodeId < b.n.hb.nodeId ? -1 : a.n.hb.nodeId > b.n.hb.nodeId ? 1 : 0;
}

/**
 * The node for `streamId` (see the rules above), or null when none can take it. Does not record anything. `avoid`:
 * nodes the broadcaster could not reach just now (it says so when it asks again): left out of every rule.
 */
export function pickNode(streamId: string, nodes: ReadonlyMap<string, NodeRecord>, assignments: ReadonlyMap<string, Assignment>, now: number, rules: FleetRules, avoid: ReadonlySet<string> = new Set()): Pick | null {
  for (const n of nodes.values()) {
    if (avoid.has(n.hb.nodeId)) continue;
    if (fresh(n, now, rules) && n.hb.status !== "unhealthy" && n.hb.streams.includes(streamId)) return { nodeId: n.hb.nodeId, rtmpServer: n.hb.rtmpServer, why: "owner" };
  }
  const assigned = assignments.get(streamId);
  if (assigned && now - assigned.at <= rules.assignmentTtlMs && !avoid.has(assigned.nodeId)) {
    const n = nodes.get(assigned.nodeId);
    // Still eligible, counting this stream's own assignment as already part of its load.
    if (n && fresh(n, now, rules) && n.hb.status === "ready" && loadOf(n, assignments, now, rules).streams <= n.hb.maxLiveStreams) {
      return { nodeId: n.hb.nodeId, rtmpServer: n.hb.rtmpServer, why: "assigned" };
    }
  }
  const others = new Map(assignments);
  others.delete(streamId);
  const candidates = [...nodes.values()].filter((n) => !avoid.has(n.hb.nodeId)).map((n) => ({ n, l: loadOf(n, others, now, rules) })).filter((c) => c.l.eligible);
  if (candidates.length === 0) return null;
  candidates.sort(compare);
  const best = candidates[0]!.n;
  return { nodeId: best.hb.nodeId, rtmpServer: best.hb.rtmpServer, why: "least-loaded" };
}
