import { describe, expect, it } from "vitest";
import type { NodeHeartbeat } from "../../../shared/events/fleet.ts";
import { type Assignment, isNewer, type NodeRecord, pickNode } from "./pick.ts";

const rules = { nodeTimeoutMs: 6000, assignmentTtlMs: 30_000 };
const NOW = 1_000_000;

function node(nodeId: string, over: Partial<NodeHeartbeat> = {}, receivedAt = NOW): NodeRecord {
  const hb: NodeHeartbeat = {
    nodeId,
    rtmpServer: `rtmp://${nodeId}.example:1935/live`,
    status: "ready",
    liveStreams: 0,
    maxLiveStreams: 4,
    streams: [],
    cpu: 0.1,
    jobs: 0,
    maxJobs: 1,
    intervalMs: 2000,
    seq: 1,
    bootId: `boot-${nodeId}`,
    ...over,
  };
  if (over.streams && over.liveStreams === undefined) hb.liveStreams = over.streams.length;
  return { hb, receivedAt, eventAt: receivedAt };
}
const fleet = (...nodes: NodeRecord[]) => new Map(nodes.map((n) => [n.hb.nodeId, n]));
const none = new Map<string, Assignment>();

describe("pickNode", () => {
  it("sends a new stream to the node with the most free stream slots", () => {
    const nodes = fleet(node("a", { streams: ["s1", "s2"] }), node("b", { streams: ["s3"] }), node("c", { streams: ["s4", "s5", "s6"] }));
    expect(pickNode("new", nodes, none, NOW, rules)).toEqual({ nodeId: "b", rtmpServer: "rtmp://b.example:1935/live", why: "least-loaded" });
  });

  it("measures load against each node's own capacity, then breaks ties by CPU, VOD jobs and id", () => {
    // a: 2 of 8 slots (0.25) beats b: 1 of 2 (0.5)
    expect(pickNode("x", fleet(node("a", { streams: ["1", "2"], maxLiveStreams: 8 }), node("b", { streams: ["3"], maxLiveStreams: 2 })), none, NOW, rules)?.nodeId).toBe("a");
    expect(pickNode("x", fleet(node("a", { cpu: 0.7 }), node("b", { cpu: 0.2 })), none, NOW, rules)?.nodeId).toBe("b");
    expect(pickNode("x", fleet(node("a", { jobs: 1 }), node("b", { jobs: 0 })), none, NOW, rules)?.nodeId).toBe("b");
    expect(pickNode("x", fleet(node("b"), node("a")), none, NOW, rules)?.nodeId).toBe("a");
  });

  it("never picks a draining, unhealthy, full or silent node; none left means null", () => {
    const nodes = fleet(
      node("draining", { status: "draining" }),
      node("sick", { status: "unhealthy", failing: ["storage"] }),
      node("full", { streams: ["1", "2"], maxLiveStreams: 2 }),
      node("silent", {}, NOW - 6001),
    );
    expect(pickNode("x", nodes, none, NOW, rules)).toBeNull();
    nodes.set("ok", node("ok", { streams: ["9", "8", "7"] }));
    expect(pickNode("x", nodes, none, NOW, rules)?.nodeId).toBe("ok");
  });

  it("sends a stream back to the node it is live on, even a draining one, but not to one gone silent or unhealthy", () => {
    expect(pickNode("s1", fleet(node("a"), node("b", { status: "draining", streams: ["s1"] })), none, NOW, rules)).toMatchObject({ nodeId: "b", why: "owner" });
    expect(pickNode("s1", fleet(node("a"), node("b", { streams: ["s1"] }, NOW - 7000)), none, NOW, rules)).toMatchObject({ nodeId: "a", why: "least-loaded" });
    expect(pickNode("s1", fleet(node("a"), node("b", { status: "unhealthy", streams: ["s1"] })), none, NOW, rules)).toMatchObject({ nodeId: "a" });
  });

  it("leaves out the nodes a broadcaster could not reach, whatever their last heartbeat said", () => {
    const nodes = fleet(node("dead", { streams: ["s1"] }), node("b", { streams: ["x", "y"] }), node("c", { streams: ["z"] }));
    expect(pickNode("s1", nodes, none, NOW, rules, new Set(["dead"]))).toMatchObject({ nodeId: "c", why: "least-loaded" });
    const assigned = new Map<string, Assignment>([["s2", { nodeId: "c", at: NOW }]]);
    expect(pickNode("s2", nodes, assigned, NOW, rules, new Set(["c"]))).toMatchObject({ nodeId: "dead" });
    expect(pickNode("s3", nodes, none, NOW, rules, new Set(["dead", "b", "c"]))).toBeNull();
  });

  it("counts streams handed to a node that are not live there yet, so broadcasters asking at once spread out", () => {
    const nodes = fleet(node("a", { maxLiveStreams: 2 }), node("b", { maxLiveStreams: 2 }));
    const assigned = new Map<string, Assignment>();
    const picks: string[] = [];
    for (const id of ["s1", "s2", "s3", "s4"]) {
      const p = pickNode(id, nodes, assigned, NOW, rules)!;
      assigned.set(id, { nodeId: p.nodeId, at: NOW });
      picks.push(p.nodeId);
    }
    expect(picks.sort()).toEqual(["a", "a", "b", "b"]);
    // both full now
    expect(pickNode("s5", nodes, assigned, NOW, rules)).toBeNull();
    // asking again for an assigned stream gives the same node, and does not count it twice
    expect(pickNode("s1", nodes, assigned, NOW, rules)).toMatchObject({ nodeId: assigned.get("s1")!.nodeId, why: "assigned" });
    // an assignment past its TTL no longer counts
    expect(pickNode("s5", nodes, assigned, NOW + 30_001, { ...rules, nodeTimeoutMs: 60_000 })).not.toBeNull();
  });

  it("stops counting an assignment once the node shows the stream live (it is then in liveStreams)", () => {
    const assigned = new Map<string, Assignment>([["s1", { nodeId: "a", at: NOW }]]);
    const nodes = fleet(node("a", { streams: ["s1"], maxLiveStreams: 2 }), node("b", { streams: ["s9"], maxLiveStreams: 2 }));
    // a: 1 live (s1, no longer pending) = b: 1 live; the tie goes to the id
    expect(pickNode("s2", nodes, assigned, NOW, rules)?.nodeId).toBe("a");
  });
});

describe("isNewer", () => {
  it("orders heartbeats of one boot by seq and of different boots by time", () => {
    const kept = node("a", { seq: 5, bootId: "b1" });
    expect(isNewer(undefined, kept.hb, NOW)).toBe(true);
    expect(isNewer(kept, { ...kept.hb, seq: 5 }, NOW + 1)).toBe(false);
    expect(isNewer(kept, { ...kept.hb, seq: 4 }, NOW + 1)).toBe(false);
    expect(isNewer(kept, { ...kept.hb, seq: 6 }, NOW)).toBe(true);
    expect(isNewer(kept, { ...kept.hb, bootId: "b2", seq: 0 }, NOW + 1)).toBe(true);
    expect(isNewer(kept, { ...kept.hb, bootId: "b0", seq: 99 }, NOW - 1)).toBe(false);
  });
});
