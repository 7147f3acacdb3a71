// Stream leases and the broadcasts' shared state in NATS KV, against a real nats-server with the shipped
// permissions (each node connects as `media-node`): one owner per stream, a live owner keeps it, a dead one loses
// it within the lease's TTL, a restarted node takes its own back at once, and a node cut off longer than the TTL
// learns that it lost the stream.

import { connect, type KV, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BroadcastRegistry, type BroadcastState } from "../../media-node/src/fleet/broadcasts.ts";
import { openFleetBuckets } from "../../media-node/src/fleet/kv.ts";
import { StreamLeases } from "../../media-node/src/fleet/leases.ts";
import { answerAlive, askAlive } from "../../media-node/src/fleet/alive.ts";
import { createLogger } from "../../media-node/src/log.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";

const TTL_MS = 2000;
const log = createLogger({ level: "error", fields: { test: "leases" } });

describe("stream leases (NATS KV, real nats-server, media-node credentials)", () => {
  let nats: NatsServer;
  const conns: NatsConnection[] = [];
  const node = async (nodeId: string, bootId = `${nodeId}-boot`, opts: { alive?: boolean } = {}) => {
    const nc = await connect(nats.options("media-node", { maxReconnectAttempts: 0 }));
    conns.push(nc);
    const buckets = await openFleetBuckets(nc, { leaseTtlMs: TTL_MS, replicas: 1, timeoutMs: 2000 });
    let kv: KV = buckets.leases;
    if (opts.alive) answerAlive(nc, nodeId, bootId);
    const leases = new StreamLeases({ owner: { nodeId, bootId }, kv: async () => kv, ttlMs: TTL_MS, log, ...(opts.alive ? { alive: (id: string) => askAlive(nc, id) } : {}) });
    return { nc, leases, broadcasts: new BroadcastRegistry(async () => buckets.broadcasts), setKv: (k: KV) => (kv = k), buckets };
  };

  beforeAll(async () => {
    nats = await startNats();
  });
  afterAll(async () => {
    for (const nc of conns) await nc.close().catch(() => undefined);
    await nats?.stop();
  });

  it("gives a stream one owner: a second node is refused while the first is alive and renewing", async () => {
    const a = await node("node-a");
    const b = await node("node-b");
    const got = await a.leases.acquire("s1");
    expect(got.ok).toBe(true);
    const t0 = Date.now();
    const other = await b.leases.acquire("s1");
    // refused as soon as the holder's renewal shows it is alive (renewals every TTL/4), not after the whole wait
    expect(other).toMatchObject({ ok: false, holder: "node-a" });
    expect(Date.now() - t0).toBeLessThan(TTL_MS);
    expect(await b.leases.holder("s1")).toMatchObject({ nodeId: "node-a" });
    if (got.ok) await got.lease.release();
    // released: free at once
    const after = await b.leases.acquire("s1", { waitMs: 0 });
    expect(after.ok).toBe(true);
    if (after.ok) await after.lease.release();
  });

  it("lets another node take the stream within the TTL once its owner dies (stops renewing)", async () => {
    const a = await node("node-a2");
    const b = await node("node-b2");
    const got = await a.leases.acquire("s2");
    expect(got.ok).toBe(true);
    // The owner dies: its connection goes, its renewals stop.
    await a.nc.close();
    const diedAt = Date.now();
    const taken = await b.leases.acquire("s2");
    const waited = Date.now() - diedAt;
    expect(taken.ok).toBe(true);
    // at most the TTL after its last renewal (plus the server's expiry check and our polling)
    expect(waited).toBeLessThan(TTL_MS + 1500);
    expect(await b.leases.holder("s2")).toMatchObject({ nodeId: "node-b2" });
    if (taken.ok) await taken.lease.release();
  });

  it("takes a stream from a holder nobody answers for on NATS without waiting for the TTL, but not from a live one", async () => {
    const a = await node("node-g", undefined, { alive: true });
    const b = await node("node-h", undefined, { alive: true });
    const got = await a.leases.acquire("s6");
    expect(got.ok).toBe(true);
    // alive and answering: refused as before
    expect(await b.leases.acquire("s6")).toMatchObject({ ok: false, holder: "node-g" });
    // its connection goes: nobody answers for node-g, and the lease is taken after one renewal interval
    await a.nc.close();
    const t0 = Date.now();
    const taken = await b.leases.acquire("s6");
    expect(taken.ok).toBe(true);
    expect(Date.now() - t0).toBeLessThan(TTL_MS);
    expect(await b.leases.holder("s6")).toMatchObject({ nodeId: "node-h" });
    if (taken.ok) await taken.lease.release();
  });

  it("hands a restarted node (same node id, new process) its own leases at once", async () => {
    const a = await node("node-c", "boot-1");
    const got = await a.leases.acquire("s3");
    expect(got.ok).toBe(true);
    await a.nc.close(); // the process dies without releasing
    const restarted = await node("node-c", "boot-2");
    const t0 = Date.now();
    const again = await restarted.leases.acquire("s3");
    expect(again.ok).toBe(true);
    expect(Date.now() - t0).toBeLessThan(500);
    if (again.ok) await again.lease.release();
  });

  it("tells a node that was cut off longer than the TTL that another node took its stream", async () => {
    const a = await node("node-d");
    const b = await node("node-e");
    const got = await a.leases.acquire("s4");
    expect(got.ok).toBe(true);
    if (!got.ok) return;
    // Cut off: its renewals go nowhere (its connection is closed), and another node takes the stream.
    await a.nc.close();
    const taken = await b.leases.acquire("s4");
    expect(taken.ok).toBe(true);
    // Back on the bus (a new connection): its next renewal finds the stream held by node-e.
    const back = await connect(nats.options("media-node", { maxReconnectAttempts: 0 }));
    conns.push(back);
    a.setKv((await openFleetBuckets(back, { leaseTtlMs: TTL_MS, replicas: 1, timeoutMs: 2000 })).leases);
    const lost = new Promise<{ holder: string }>((r) => got.lease.once("lost", r));
    await got.lease.renew();
    expect(await lost).toEqual({ holder: "node-e" });
    expect(got.lease.lost).toBe(true);
    // and its release does not free node-e's lease
    await got.lease.release();
    expect(await b.leases.holder("s4")).toMatchObject({ nodeId: "node-e" });
    if (taken.ok) await taken.lease.release();
  });

  it("keeps unfinished broadcasts' state until their end, and only for the broadcast that wrote it", async () => {
    const a = await node("node-f");
    const state: BroadcastState = {
      v: 1,
      streamId: "s5",
      broadcastId: "brd_1",
      keyBase: "live/s5/brd_1",
      aliasKey: "live/s5/live.m3u8",
      app: "live",
      nodeId: "node-f",
      startedAt: Date.now(),
      record: true,
      segmentS: 2,
      liveWindow: 15,
      journalPage: 14,
      variants: ["480p", "audio"],
    };
    await a.broadcasts.put(state);
    expect(await a.broadcasts.get("s5")).toEqual(state);
    expect(await a.broadcasts.streams()).toContain("s5");
    await a.broadcasts.delete("s5", "brd_other");
    expect(await a.broadcasts.get("s5")).toEqual(state);
    await a.broadcasts.delete("s5", "brd_1");
    expect(await a.broadcasts.get("s5")).toBeUndefined();
    expect(await a.broadcasts.streams()).not.toContain("s5");
  });
});
