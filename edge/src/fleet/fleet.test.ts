import { describe, expect, it } from "vitest";
import { makeEvent } from "../../../shared/envelope.ts";
import type { NodeHeartbeat } from "../../../shared/events/fleet.ts";
import { signWebhook } from "../../../shared/signing/webhooks.ts";
import { api, createStream, edge, env, errorCode, jwt, newUser } from "../../test/streams.ts";
import type { FleetNodeView } from "./fleet-object.ts";

// Heartbeats go in the way the NATS -> HTTP bridge sends them (signed POST /hooks/events); the Streams API then
// hands each broadcaster a node. One Fleet object serves the whole file, so each test uses nodes of its own and
// retires them (draining) at the end.

let seq = 0;
async function heartbeat(nodeId: string, over: Partial<NodeHeartbeat> = {}): Promise<Response> {
  const data: NodeHeartbeat = {
    nodeId,
    rtmpServer: `rtmp://${nodeId}.media.test:1935/live`,
    status: "ready",
    liveStreams: 0,
    maxLiveStreams: 2,
    streams: [],
    cpu: 0.2,
    jobs: 0,
    maxJobs: 1,
    intervalMs: 2000,
    seq: ++seq,
    bootId: `boot-${nodeId}`,
    ...over,
  };
  if (over.streams && over.liveStreams === undefined) data.liveStreams = over.streams.length;
  const event = makeEvent("node.heartbeat", data, { source: `media-node/${nodeId}`, subject: `node/${nodeId}` });
  const body = JSON.stringify(event);
  return edge("/hooks/events", { method: "POST", headers: { "content-type": "application/json", ...(await signWebhook(env.EDGE_INGRESS_SECRET!, event.id, body)) }, body });
}

async function fleetView(): Promise<{ nodes: FleetNodeView[] }> {
  const res = await api("GET", "/internal/fleet", env.INTERNAL_API_TOKEN!);
  expect(res.status).toBe(200);
  return (await res.json()) as { nodes: FleetNodeView[] };
}

const retire = (...ids: string[]) => Promise.all(ids.map((id) => heartbeat(id, { status: "draining" })));

describe("ingest routing from heartbeats", () => {
  it("hands each new stream the least loaded ready node, spreading broadcasters who ask at once", async () => {
    for (const id of ["t1-a", "t1-b"]) expect((await heartbeat(id)).status).toBe(200);
    const owner = newUser("caster");
    const streams = await Promise.all([1, 2, 3, 4].map(() => createStream(owner)));
    const nodes = streams.map((s) => (s.rtmp as { node?: string }).node);
    expect(nodes.sort()).toEqual(["t1-a", "t1-a", "t1-b", "t1-b"]);
    for (const s of streams) expect(s.rtmp!.url).toBe(`rtmp://${(s.rtmp as { node?: string }).node}.media.test:1935/live`);
    expect(streams.every((s) => s.obs!.server === s.rtmp!.url)).toBe(true);
    // Both nodes are full now (2 slots each, 2 handed out each): a fifth stream gets RTMP_BASE_URL.
    const fifth = await createStream(owner);
    expect(fifth.rtmp).toMatchObject({ url: env.RTMP_BASE_URL, node: null });
    // Asking again for a stream gives the same node (the studio page reloading does not move anyone).
    const again = await api("GET", `/streams/${streams[0]!.id}/ingest`, await jwt(owner));
    expect(await again.json()).toMatchObject({ rtmp: { node: (streams[0]!.rtmp as { node?: string }).node, streamKey: streams[0]!.rtmp!.streamKey } });
    await retire("t1-a", "t1-b");
  });

  it("sends a broadcaster back to the node its stream is live on; never to a draining or unhealthy node for a new one", async () => {
    const owner = newUser("caster");
    const live = await createStream(owner);
    await heartbeat("t2-owner", { status: "draining", streams: [live.id] });
    await heartbeat("t2-sick", { status: "unhealthy", failing: ["storage"] });
    await heartbeat("t2-busy", { streams: ["other-1"], maxLiveStreams: 4 });
    const token = await jwt(owner);
    const back = (await (await api("GET", `/streams/${live.id}/ingest`, token)).json()) as { rtmp: { node: string; url: string } };
    expect(back.rtmp.node).toBe("t2-owner");
    const fresh = await createStream(owner);
    expect((fresh.rtmp as { node?: string }).node).toBe("t2-busy");
    // Its broadcaster could not reach it (the node just died): asking again with avoid= gives another node.
    const elsewhere = await api("GET", `/streams/${live.id}/ingest?avoid=t2-owner`, token);
    expect(((await elsewhere.json()) as { rtmp: { node: string } }).rtmp.node).toBe("t2-busy");
    const bad = await api("GET", `/streams/${live.id}/ingest?avoid=../x`, token);
    expect(bad.status).toBe(400);
    expect(await errorCode(bad)).toBe("invalid_query");
    const view = await fleetView();
    const byId = new Map(view.nodes.map((n) => [n.nodeId, n]));
    expect(byId.get("t2-owner")).toMatchObject({ state: "draining", takesStreams: false, streams: [live.id] });
    expect(byId.get("t2-sick")).toMatchObject({ state: "unhealthy", failing: ["storage"], takesStreams: false });
    expect(byId.get("t2-busy")).toMatchObject({ state: "ready", liveStreams: 1, pendingStreams: 2, takesStreams: true, load: 0.75 });
    await retire("t2-busy", "t2-sick");
  });

  it("keeps only the newest heartbeat of a node: a late or repeated one changes nothing", async () => {
    await heartbeat("t3-a", { seq: 100, bootId: "t3", liveStreams: 1, streams: ["x1"] });
    const late = await heartbeat("t3-a", { seq: 99, bootId: "t3", liveStreams: 0, streams: [] });
    expect(late.status).toBe(200);
    expect(await late.json()).toMatchObject({ duplicate: true });
    expect((await fleetView()).nodes.find((n) => n.nodeId === "t3-a")).toMatchObject({ liveStreams: 1, streams: ["x1"] });
    await heartbeat("t3-a", { seq: 101, bootId: "t3", status: "draining" });
  });

  it("refuses a malformed heartbeat at the ingress and routes nothing to it", async () => {
    const event = { ...makeEvent("node.heartbeat", { nodeId: "t4", rtmpServer: "rtmp://t4.test/live", status: "ready", liveStreams: 0, maxLiveStreams: 1, streams: [], cpu: 0, jobs: 0, maxJobs: 0, intervalMs: 1000, seq: 1, bootId: "b" }, { source: "media-node/t4", subject: "node/t4" }) };
    (event.data as { rtmpServer: string }).rtmpServer = "http://t4.test/live";
    const body = JSON.stringify(event);
    const res = await edge("/hooks/events", { method: "POST", headers: { "content-type": "application/json", ...(await signWebhook(env.EDGE_INGRESS_SECRET!, event.id, body)) }, body });
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe("malformed_event");
    expect((await fleetView()).nodes.some((n) => n.nodeId === "t4")).toBe(false);
  });

  it("keeps the fleet view behind the internal token, and the ingest route to the stream's owner", async () => {
    expect((await api("GET", "/internal/fleet", null)).status).toBe(401);
    const s = await createStream(newUser("caster"));
    const res = await api("GET", `/streams/${s.id}/ingest`, await jwt(newUser("someone-else")));
    expect(res.status).toBe(403);
    expect(await errorCode(res)).toBe("not_stream_owner");
  });
});
