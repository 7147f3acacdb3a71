// The bus as a 3-server JetStream cluster (the shipped deploy/nats/nats-cluster.conf, R3 streams and KV buckets):
// the server leading the EVENTS stream is SIGKILLed while a media node carries a live stream (real FFmpeg) and a
// burst of events is on its way to the edge, then restarted. Every process was given the three URLs and nothing
// else: no client is reconfigured. Nothing is lost (every event applied at the edge), nothing applied twice, the
// stream goes on without a break (no FFmpeg restart, no lost lease), and the restarted server catches up.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Envelope, makeEvent } from "../../shared/envelope.ts";
import { mintPublishToken } from "../../shared/tokens/publish-token.ts";
import { busConfig } from "../../media-node/src/bus/config.ts";
import { createMediaEventBus, type MediaEventBus } from "../../media-node/src/bus/event-bus.ts";
import { parseMediaPlaylist } from "../../media-node/src/hls/journal.ts";
import { FsObjectStore } from "../../media-node/src/storage/fs-store.ts";
import { type NatsToHttpBridgeProcess, startNatsToHttpBridge } from "../helpers/bridges.ts";
import { type EdgeServer, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { publishTestSource } from "../helpers/ffmpeg.ts";
import { type MediaNodeProcess, startMediaNodeProcess } from "../helpers/media-node.ts";
import { type NatsCluster, startNatsCluster } from "../helpers/nats.ts";
import type { GroupProcess } from "../helpers/process.ts";
import { waitFor } from "../helpers/wait.ts";

const EVENTS = 3000;
const RATE = 500;
const STREAM = "clustered";

interface Stats {
  applied: number;
  appliedTwice: number;
  byType: Record<string, { applied: number; duplicates: number }>;
}

describe("a 3-server NATS cluster loses a server mid-stream and mid-burst", () => {
  let cluster: NatsCluster;
  let edge: EdgeServer;
  let bridge: NatsToHttpBridgeProcess;
  let node: MediaNodeProcess;
  let publisher: GroupProcess | undefined;
  let bus: MediaEventBus;
  let nc: NatsConnection;
  let root: string;
  let store: FsObjectStore;
  const auth = { authorization: `Bearer ${TEST_SECRETS.INTERNAL_API_TOKEN}` };
  const stats = async () => (await (await fetch(`${edge.url}/internal/bus/stats`, { headers: auth })).json()) as Stats;

  beforeAll(async () => {
    cluster = await startNatsCluster();
    root = await mkdtemp(join(tmpdir(), "pulsecast-cluster-"));
    store = new FsObjectStore({ dir: join(root, "store"), publicBaseUrl: "http://unused.test/media" });
    [edge, node] = await Promise.all([
      startEdge(),
      startMediaNodeProcess({
        nodeId: "clustered-node",
        natsEnv: cluster.env("media-node"),
        storeDir: join(root, "store"),
        root,
        env: { MEDIA_LADDER: "240p", MEDIA_SEGMENT_S: "1", MEDIA_X264_PRESET: "ultrafast", MEDIA_LEASE_TTL_S: "4" },
      }),
    ]);
    bridge = await startNatsToHttpBridge({ nats: cluster, edgeUrl: `${edge.url}/hooks/events` });
    bus = createMediaEventBus(busConfig({ ...cluster.settings("media-node"), outboxDir: join(root, "burst-outbox") }), { name: "burst", log: () => undefined });
    await bus.start();
    nc = await connect(cluster.options("ops"));
  });
  afterAll(async () => {
    await publisher?.kill();
    await bus?.stop();
    await nc?.close();
    await node?.kill();
    await bridge?.stop();
    await edge?.stop();
    await cluster?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("keeps every event exactly once and the live stream unbroken", async () => {
    const token = await mintPublishToken(TEST_SECRETS.PUBLISH_TOKEN_SECRET, { sid: STREAM, app: "live", scope: "publish", exp: Math.floor(Date.now() / 1000) + 600 });
    publisher = publishTestSource(`${node.rtmpBase}/${STREAM}?token=${token}`, { size: "426x240", gop: 30 });
    const live = await node.process.waitForOutput(/"msg":"stream is live"[^\n]*"broadcastId":"(brd_[^"]+)"/, 60_000);
    const playlistKey = `live/${STREAM}/${live[1]}/240p/index.m3u8`;
    const playlist = async () => parseMediaPlaylist(Buffer.from((await store.get(playlistKey))!.body).toString("utf8"));
    const segmentsSoFar = async () => {
      const p = await playlist();
      return p.mediaSequence + p.segments.length;
    };

    // The server leading EVENTS goes down a second into the burst.
    const jsm = await nc.jetstreamManager();
    const leader = (await jsm.streams.info("EVENTS")).cluster?.leader;
    expect(leader).toBeDefined();
    const victim = cluster.byName(leader!);
    await fetch(`${edge.url}/internal/bus/stats/reset`, { method: "POST", headers: auth });
    const t0 = performance.now();
    let killedAt = 0;
    let segmentsAtKill = 0;
    const burst = (async () => {
      for (let i = 0; i < EVENTS; i++) {
        const wait = t0 + (i / RATE) * 1000 - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        const e = makeEvent("media.progress", { mediaId: `burst-${i}`, roomId: `burst-${i % 32}`, stage: "transcode", percent: i % 100 }, { source: "media-node/burst", subject: `media/burst-${i}` });
        await bus.publish(e as Envelope);
        if (i === RATE && !killedAt) {
          segmentsAtKill = await segmentsSoFar();
          killedAt = Date.now();
          void victim.kill();
        }
      }
    })();
    await burst;
    // Down for a few seconds, then back.
    await new Promise((r) => setTimeout(r, Math.max(0, killedAt + 5000 - Date.now())));
    await victim.restart();

    await waitFor(`all ${EVENTS} events applied at the edge`, async () => ((await stats()).byType["media.progress"]?.applied ?? 0) >= EVENTS, 120_000, 250);
    const s = await stats();
    expect(s.byType["media.progress"]!.applied).toBe(EVENTS); // none lost, none applied twice
    expect(s.appliedTwice).toBe(0);
    await bus.drained();
    // JetStream kept each event once (re-sent ones after the kill were dropped by their id).
    const subjects = await jsm.streams.info("EVENTS", { subjects_filter: "media.progress" });
    expect(subjects.state.subjects?.["media.progress"]).toBe(EVENTS);

    // The restarted server caught up: every replica current again.
    await waitFor("every EVENTS replica current", async () => {
      const info = await jsm.streams.info("EVENTS");
      const replicas = info.cluster?.replicas ?? [];
      return replicas.length === 2 && replicas.every((r) => r.current && !r.offline);
    }, 60_000, 500);

    // The live stream went on through it: more segments since the kill, one FFmpeg run (no discontinuity), the
    // node still the stream's owner.
    await waitFor("segments stored after the kill", async () => (await segmentsSoFar()) >= segmentsAtKill + 8, 60_000, 250);
    const after = await playlist();
    expect(after.segments.every((seg) => !seg.discontinuity)).toBe(true);
    expect(node.process.output()).not.toMatch(/stream lease taken by another node|"msg":"stream ended"/);
    const kv = await nc.jetstream().views.kv("STREAM_LEASES");
    const lease = await kv.get(STREAM);
    expect(lease?.operation).toBe("PUT");
    expect(JSON.parse(new TextDecoder().decode(lease!.value))).toMatchObject({ nodeId: "clustered-node" });
    expect((await jsm.streams.info("KV_STREAM_LEASES")).config.num_replicas).toBe(3);
  });
});
