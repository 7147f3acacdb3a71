// The media fleet as the edge sees it: one Durable Object (named "fleet") holding every media node's latest
// heartbeat, and which node each stream was handed a moment ago. The Streams API asks it where a broadcaster
// should publish (pick.ts has the rules); the event ingress hands it the heartbeats the NATS -> HTTP bridge
// forwards.
//
// Heartbeats are kept in SQLite too, so a restarted object (a deploy) routes at once instead of falling back to
// RTMP_BASE_URL until the next round of heartbeats. Assignments live in memory only: they matter for seconds, and
// losing them costs at most two broadcasters who asked at the same moment landing on one node. One object for the
// whole fleet is enough: it takes one heartbeat per node every few seconds and one call per broadcaster asking.
import { DurableObject } from "cloudflare:workers";
import { type Envelope, parseEvent } from "../../../shared/envelope.ts";
import type { NodeHeartbeat } from "../../../shared/events/fleet.ts";
import type { Env } from "../env.ts";
import { claimedId, type EventApplyOutcome } from "../ledger/applied-ledger.ts";
import { edgeSettings } from "../settings.ts";
import { type Assignment, type FleetRules, fresh, isNewer, loadOf, type NodeRecord, type Pick, pickNode } from "./pick.ts";

/** Nodes not heard from for this many node timeouts are forgotten (shown as `gone` until then). */
const FORGET_AFTER_TIMEOUTS = 10;

export interface FleetNodeView {
  nodeId: string;
  rtmpServer: string;
  /** `gone`: no heartbeat within FLEET_NODE_TIMEOUT_MS */
  state: NodeHeartbeat["status"] | "gone";
  failing?: string[];
  liveStreams: number;
  maxLiveStreams: number;
  /** streams handed to it that its heartbeat does not show live yet */
  pendingStreams: number;
  load: number;
  cpu: number;
  jobs: number;
  maxJobs: number;
  streams: string[];
  lastHeartbeatMsAgo: number;
  /** would the next new broadcaster be sent here (fresh, ready, a free slot)? */
  takesStreams: boolean;
}

export class Fleet extends DurableObject<Env> {
  private readonly nodes = new Map<string, NodeRecord>();
  private readonly assignments = new Map<string, Assignment>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, v TEXT NOT NULL)");
    for (const row of ctx.storage.sql.exec<{ v: string }>("SELECT v FROM nodes")) {
      const n = JSON.parse(row.v) as NodeRecord;
      this.nodes.set(n.hb.nodeId, n);
    }
  }

  private rules(): FleetRules {
    const s = edgeSettings(this.env);
    return { nodeTimeoutMs: s.fleetNodeTimeoutMs, assignmentTtlMs: s.fleetAssignmentTtlMs };
  }

  /**
   * Takes node.heartbeat events (the ingress's batch call). A heartbeat older than the one kept for its node is a
   * duplicate (`applied: false`); a newer one replaces it. No ledger: the latest heartbeat wins by itself.
   */
  async applyHeartbeats(events: Envelope[]): Promise<EventApplyOutcome[]> {
    const now = Date.now();
    const out: EventApplyOutcome[] = [];
    events.forEach((event, index) => {
      const parsed = parseEvent(event);
      if (!parsed.ok || parsed.event.type !== "node.heartbeat") {
        out.push({ id: claimedId(event, index), applied: false, error: `fleet: takes node.heartbeat only${parsed.ok ? `, not '${parsed.event.type}'` : `: ${parsed.error}`}` });
        return;
      }
      const hb = parsed.event.data as NodeHeartbeat;
      const eventAt = Date.parse(parsed.event.time);
      if (!isNewer(this.nodes.get(hb.nodeId), hb, eventAt)) {
        out.push({ id: parsed.event.id, applied: false });
        return;
      }
      const record: NodeRecord = { hb, receivedAt: now, eventAt };
      this.nodes.set(hb.nodeId, record);
      this.ctx.storage.sql.exec("INSERT INTO nodes (id, v) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET v = excluded.v", hb.nodeId, JSON.stringify(record));
      out.push({ id: parsed.event.id, applied: true });
    });
    this.prune(now);
    return out;
  }

  /**
   * Where each of `streamIds` should publish: a node (see pick.ts), or null when no node can take it (the caller
   * falls back to RTMP_BASE_URL). Picking a least-loaded node records the assignment, so the next broadcaster
   * asking goes elsewhere if this one filled the node; `reserve: false` only looks (a list of one's streams).
   */
  async assign(streamIds: string[], avoid: string[] = [], opts: { reserve?: boolean } = {}): Promise<Record<string, Pick | null>> {
    const now = Date.now();
    const rules = this.rules();
    this.prune(now);
    const out: Record<string, Pick | null> = {};
    const avoided = new Set(avoid);
    for (const streamId of streamIds) {
      const pick = pickNode(streamId, this.nodes, this.assignments, now, rules, avoided);
      out[streamId] = pick;
      if (pick?.why === "least-loaded" && opts.reserve !== false) this.assignments.set(streamId, { nodeId: pick.nodeId, at: now });
      else if (pick?.why === "owner") this.assignments.delete(streamId);
    }
    return out;
  }

  /** The fleet for operators (GET /internal/fleet). */
  async view(): Promise<{ nodes: FleetNodeView[]; assignments: { streamId: string; nodeId: string; msAgo: number }[] }> {
    const now = Date.now();
    const rules = this.rules();
    this.prune(now);
    const nodes = [...this.nodes.values()]
      .map((n): FleetNodeView => {
        const l = loadOf(n, this.assignments, now, rules);
        return {
          nodeId: n.hb.nodeId,
          rtmpServer: n.hb.rtmpServer,
          state: fresh(n, now, rules) ? n.hb.status : "gone",
          ...(n.hb.failing ? { failing: n.hb.failing } : {}),
          liveStreams: n.hb.liveStreams,
          maxLiveStreams: n.hb.maxLiveStreams,
          pendingStreams: l.streams - n.hb.liveStreams,
          load: Math.round(l.load * 1000) / 1000,
          cpu: n.hb.cpu,
          jobs: n.hb.jobs,
          maxJobs: n.hb.maxJobs,
          streams: n.hb.streams,
          lastHeartbeatMsAgo: now - n.receivedAt,
          takesStreams: l.eligible,
        };
      })
      .sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
    const assignments = [...this.assignments].map(([streamId, a]) => ({ streamId, nodeId: a.nodeId, msAgo: now - a.at }));
    return { nodes, assignments };
  }

  private prune(now: number): void {
    const rules = this.rules();
    for (const [streamId, a] of this.assignments) if (now - a.at > rules.assignmentTtlMs) this.assignments.delete(streamId);
    for (const [id, n] of this.nodes) {
      if (now - n.receivedAt > rules.nodeTimeoutMs * FORGET_AFTER_TIMEOUTS) {
        this.nodes.delete(id);
        this.ctx.storage.sql.exec("DELETE FROM nodes WHERE id = ?", id);
      }
    }
  }
}

/** The one fleet object. */
export const fleetObject = (env: Env) => env.Fleet.getByName("fleet");
