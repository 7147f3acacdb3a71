// The fleet's view at the edge, from real processes: two media nodes heartbeat on NATS, the NATS -> HTTP bridge
// forwards the heartbeats to the edge (wrangler dev), and the Streams API hands broadcasters the nodes' own RTMP
// URLs, least loaded first. A node that drains (POST /drain) gets no new streams; a node that dies drops out of
// the view within FLEET_NODE_TIMEOUT_MS.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NatsToHttpBridgeProcess, startNatsToHttpBridge } from "../helpers/bridges.ts";
import { type EdgeServer, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import { type MediaNodeProcess, startMediaNodeProcess } from "../helpers/media-node.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";
import { waitFor } from "../helpers/wait.ts";

interface FleetView {
  nodes: { nodeId: string; rtmpServer?: string; state: string; takesStreams: boolean; maxLiveStreams: number; lastHeartbeatMsAgo: number }[];
}

describe("heartbeats to the edge's fleet view, and ingest routing", () => {
  let nats: NatsServer;
  let edge: EdgeServer;
  let bridge: NatsToHttpBridgeProcess;
  let root: string;
  let nodes: MediaNodeProcess[] = [];
  let jwt: string;

  const fleet = async (): Promise<FleetView> => (await (await fetch(`${edge.url}/internal/fleet`, { headers: { authorization: `Bearer ${TEST_SECRETS.INTERNAL_API_TOKEN}` } })).json()) as FleetView;
  const createStream = async () => {
    const res = await fetch(`${edge.url}/streams`, { method: "POST", headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json" }, body: "{}" });
    expect(res.status).toBe(201);
    return (await res.json()) as { id: string; rtmp: { url: string; node: string | null; streamKey: string } };
  };

  beforeAll(async () => {
    nats = await startNats();
    edge = await startEdge({ FLEET_NODE_TIMEOUT_MS: "2000" });
    bridge = await startNatsToHttpBridge({ nats, edgeUrl: `${edge.url}/hooks/events` });
    root = await mkdtemp(join(tmpdir(), "pulsecast-fleet-hb-"));
    nodes = await Promise.all(
      ["hb-1", "hb-2"].map((nodeId, i) =>
        startMediaNodeProcess({
          nodeId,
          natsEnv: nats.env("media-node"),
          storeDir: join(root, "store"),
          root,
          env: { MEDIA_HEARTBEAT_INTERVAL_MS: "300", MEDIA_MAX_LIVE_STREAMS: "2", MEDIA_PUBLIC_RTMP_URL: `rtmp://media-${i + 1}.example.test:1935/live` },
        }),
      ),
    );
    jwt = await mintHs256(TEST_SECRETS.JWT_SECRET, { sub: "caster", claims: { role: "broadcaster" } });
  });
  afterAll(async () => {
    for (const n of nodes) await n.kill();
    await bridge?.stop();
    await edge?.stop();
    await nats?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("shows both nodes ready, and spreads new streams over them by their own RTMP URLs", async () => {
    await waitFor("both nodes in the fleet view", async () => (await fleet()).nodes.filter((n) => n.state === "ready").length === 2, 20_000, 200);
    const view = await fleet();
    expect(view.nodes.map((n) => n.nodeId).sort()).toEqual(["hb-1", "hb-2"]);
    expect(view.nodes.every((n) => n.maxLiveStreams === 2 && n.takesStreams)).toBe(true);
    const streams = [await createStream(), await createStream(), await createStream(), await createStream()];
    expect(streams.map((s) => s.rtmp.node).sort()).toEqual(["hb-1", "hb-1", "hb-2", "hb-2"]);
    for (const s of streams) expect(s.rtmp.url).toBe(`rtmp://media-${s.rtmp.node === "hb-1" ? 1 : 2}.example.test:1935/live`);
    // each node's two slots are handed out: the next broadcaster gets RTMP_BASE_URL
    expect((await createStream()).rtmp.node).toBeNull();
  });

  it("sends no new stream to a draining node, and drops a dead one from the fleet", async () => {
    const [one, two] = nodes as [MediaNodeProcess, MediaNodeProcess];
    const drain = await fetch(`${one.opsUrl}/drain`, { method: "POST" });
    expect(drain.status).toBe(202);
    expect((await fetch(`${one.opsUrl}/healthz`)).status).toBe(503);
    await waitFor("hb-1 draining in the fleet view", async () => (await fleet()).nodes.find((n) => n.nodeId === "hb-1")?.state === "draining", 10_000, 100);
    await two.kill();
    await waitFor("hb-2 gone from the fleet view", async () => (await fleet()).nodes.find((n) => n.nodeId === "hb-2")?.state === "gone", 10_000, 200);
    const view = await fleet();
    expect(view.nodes.every((n) => !n.takesStreams)).toBe(true);
    // nobody to send a broadcaster to: the configured RTMP_BASE_URL
    const s = await createStream();
    expect(s.rtmp.node).toBeNull();
  });
});
