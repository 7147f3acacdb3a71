// `npm run bench:fleet`: a fleet on this machine and two faults. A 3-server NATS cluster (the shipped
// deploy/nats/nats-cluster.conf, R3), two media-node processes, the NATS -> HTTP bridge and the edge (Miniflare on
// the deploy bundle). Four broadcasters each create a stream through the Streams API and publish a 480p source
// (real FFmpeg, sending a clip encoded beforehand, as a broadcaster's own machine would) to the RTMP URL the edge
// hands them (ingest routing spreads them over the nodes). Meanwhile a
// media-side publisher sends events through the bus at a steady rate. Then:
//   1. the node carrying the first stream is SIGKILLed (with its FFmpeg): its broadcasters reconnect the way
//      broadcasting software that asks the Streams API would (GET /streams/:id/ingest, retry until a node takes
//      it) and the broadcasts continue on the other node;
//   2. the NATS server leading the EVENTS stream is SIGKILLed, and restarted later.
// Prints one JSON line:
//   {"streams":4,"spread":{...},"failover_s":…,"segments_lost":…,"events_lost":0,"events_duplicated":0,"nats_failover_s":…}
// failover_s: the slowest moved broadcast, from its broadcaster's reconnect (the moment its connection dropped) to
// the first segment the new node stored for it. segments_lost: segments stored before the kill that the moved
// broadcasts' recordings do not list (or whose objects are gone). events_lost / events_duplicated: the steady
// events (and probes) published, against what the edge applied (by event id: applied twice counts as duplicated).
// nats_failover_s: from the server's SIGKILL to the first probe publish JetStream stored after it (probes every
// 100 ms straight to JetStream). Targets: failover_s <= 10, events lost/duplicated 0, segments_lost 0.
// Details, and the baseline of the same run (a broadcast that stays on its node: first segment after a clean
// reconnect), on stderr and in the line's other fields. Settings: BENCH_FLEET_RATE (events/s, 200),
// BENCH_FLEET_LIVE_S (seconds of broadcast before the node is killed, 12).

import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "nats";
import { type Envelope, makeEvent } from "../../shared/envelope.ts";
import { utf8 } from "../../shared/encoding.ts";
import { busConfig } from "../../media-node/src/bus/config.ts";
import { createMediaEventBus } from "../../media-node/src/bus/event-bus.ts";
import { journalPageSize, loadStoredVariant } from "../../media-node/src/hls/journal.ts";
import { FsObjectStore } from "../../media-node/src/storage/fs-store.ts";
import { startNatsToHttpBridge } from "../helpers/bridges.ts";
import { TEST_SECRETS } from "../helpers/edge.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import { type MediaNodeProcess, startMediaNodeProcess } from "../helpers/media-node.ts";
import { startNatsCluster } from "../helpers/nats.ts";
import { type GroupProcess, run, spawnGroup } from "../helpers/process.ts";
import { waitFor } from "../helpers/wait.ts";
import { startMiniflareEdge } from "./lib/miniflare-edge.ts";
import { median } from "./lib/stats.ts";

const RATE = Number(process.env.BENCH_FLEET_RATE ?? 200);
const LIVE_S = Number(process.env.BENCH_FLEET_LIVE_S ?? 12);
const STREAMS = 4;
const LIVE_WINDOW = 10;
const NODE_ENV = {
  MEDIA_LADDER: "480p",
  MEDIA_SEGMENT_S: "1",
  MEDIA_X264_PRESET: "ultrafast",
  MEDIA_MAX_LIVE_STREAMS: "4",
  MEDIA_LIVE_WINDOW: String(LIVE_WINDOW),
  MEDIA_HEARTBEAT_INTERVAL_MS: "1000",
  MEDIA_LEASE_TTL_S: "4",
  MEDIA_RECONNECT_GRACE_S: "10",
  MEDIA_SHED_BELOW_SPEED: "0",
};

const log = (m: string) => process.stderr.write(`[bench:fleet] ${m}\n`);
const cleanups: (() => Promise<unknown>)[] = [];
async function cleanup() {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
}

interface StreamView {
  id: string;
  rtmp: { url: string; streamKey: string; node: string | null };
}

async function main() {
  log(`load average ${loadavg()[0]!.toFixed(1)}; starting a 3-server NATS cluster, the edge, the bridge and two media nodes`);
  const cluster = await startNatsCluster();
  cleanups.push(() => cluster.stop());
  const root = await mkdtemp(join(tmpdir(), "pulsecast-bench-fleet-"));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const storeDir = join(root, "store");
  const store = new FsObjectStore({ dir: storeDir, publicBaseUrl: "http://unused.test/media" });
  const edge = await startMiniflareEdge({ FLEET_NODE_TIMEOUT_MS: "3000" });
  cleanups.push(() => edge.stop());
  const bridge = await startNatsToHttpBridge({ nats: cluster, edgeUrl: `${edge.url}/hooks/events` });
  cleanups.push(() => bridge.stop());
  const nodes = new Map<string, MediaNodeProcess>();
  for (const nodeId of ["node-a", "node-b"]) {
    const n = await startMediaNodeProcess({ nodeId, natsEnv: cluster.env("media-node"), storeDir, root, env: NODE_ENV });
    nodes.set(nodeId, n);
    cleanups.push(() => n.kill());
  }

  const auth = { authorization: `Bearer ${TEST_SECRETS.INTERNAL_API_TOKEN}` };
  const jwt = await mintHs256(TEST_SECRETS.JWT_SECRET, { sub: "bench-caster", claims: { role: "broadcaster" } });
  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${edge.url}${path}`, { method, headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json" }, ...(body ? { body: JSON.stringify(body) } : {}) });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  await waitFor("both nodes ready in the edge's fleet view", async () => {
    const v = (await (await fetch(`${edge.url}/internal/fleet`, { headers: auth })).json()) as { nodes: { state: string }[] };
    return v.nodes.filter((n) => n.state === "ready").length === 2;
  }, 30_000, 200);

  // The steady event flow, through the media side's own outbox, the cluster, the bridge, into the edge.
  const bus = createMediaEventBus(busConfig({ ...cluster.settings("media-node"), outboxDir: join(root, "bench-outbox") }), { name: "bench-flow", log: () => undefined });
  await bus.start();
  cleanups.push(() => bus.stop());
  const published = new Set<string>();
  let flowing = true;
  const flow = (async () => {
    const t0 = performance.now();
    for (let i = 0; flowing; i++) {
      const wait = t0 + (i / RATE) * 1000 - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const e = makeEvent("media.progress", { mediaId: `flow-${i}`, roomId: `flow-${i % 16}`, stage: "transcode", percent: i % 100 }, { source: "media-node/bench", subject: `media/flow-${i}` });
      published.add(e.id);
      await bus.publish(e as Envelope);
    }
  })();

  // Four broadcasters: a stream each, published where the edge says.
  const streams: StreamView[] = [];
  for (let i = 0; i < STREAMS; i++) streams.push(await api<StreamView>("POST", "/streams", { title: `fleet ${i}` }));
  const spread: Record<string, number> = {};
  for (const s of streams) spread[s.rtmp.node ?? "none"] = (spread[s.rtmp.node ?? "none"] ?? 0) + 1;
  log(`ingest routing: ${JSON.stringify(spread)}`);
  const publishers = new Map<string, GroupProcess>();
  // The broadcasters' encoding happens on their machines, not on the media nodes' host: each one here sends a clip
  // encoded once beforehand (480p25 H.264 + AAC, a keyframe a second), looped at real time without re-encoding,
  // so this machine's cores go to the nodes. What OBS does with the Streams API's two fields: Server + Stream Key.
  const clip = join(root, "broadcaster-480p.mp4");
  const made = await run("ffmpeg", ["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=854x480:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "20", "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-shortest", clip]);
  if (made.code !== 0) throw new Error(`could not make the broadcasters' clip: ${made.stderr}`);
  const publish = (s: StreamView, server: string) => {
    const p = spawnGroup("ffmpeg", ["-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1", "-i", clip, "-c", "copy", "-f", "flv", `${server}/${s.rtmp.streamKey}`]);
    publishers.set(s.id, p);
    cleanups.push(() => p.kill());
    return p;
  };
  for (const s of streams) publish(s, s.rtmp.url);

  // Live on both nodes: the edge's fleet view lists each stream on its node.
  const fleetStreams = async () => {
    const v = (await (await fetch(`${edge.url}/internal/fleet`, { headers: auth })).json()) as { nodes: { nodeId: string; state: string; streams: string[] }[] };
    return new Map(v.nodes.filter((n) => n.state !== "gone").flatMap((n) => n.streams.map((id) => [id, n.nodeId] as const)));
  };
  await waitFor("every stream live on its node", async () => (await fleetStreams()).size === STREAMS, 60_000, 250);
  const broadcastOf = async (s: StreamView) => (await api<{ current: { broadcastId: string } | null }>("GET", `/streams/${s.id}`)).current?.broadcastId;
  const broadcasts = new Map<string, string>();
  await waitFor("every broadcast known to the edge", async () => {
    for (const s of streams) {
      const b = await broadcastOf(s);
      if (b) broadcasts.set(s.id, b);
    }
    return broadcasts.size === STREAMS;
  }, 60_000, 500);
  // Baseline of the same run: a broadcaster's first start on a node that was there all along, from its publish
  // being accepted to the broadcast being playable (the node's own "stream is live" line says how long).
  const liveAfter = (n: MediaNodeProcess, id: string) => {
    const line = n.process.output().split("\n").find((l) => l.includes('"msg":"stream is live"') && l.includes(id));
    return line ? (JSON.parse(line) as { sincePublishMs: number }).sincePublishMs / 1000 : undefined;
  };
  const firstLive = (id: string) => [...nodes.values()].map((n) => liveAfter(n, id)).find((v) => v !== undefined);
  await waitFor("every broadcast playable", () => streams.every((s) => firstLive(s.id) !== undefined), 60_000, 250);
  const baseline = streams.map((s) => firstLive(s.id)!);
  log(`all ${STREAMS} live (publish accepted -> playable: ${baseline.map((b) => b.toFixed(2)).join(", ")} s); broadcasting ${LIVE_S} s before the first fault`);
  await new Promise((r) => setTimeout(r, LIVE_S * 1000));

  // Fault 1: the node carrying the first stream dies with its FFmpeg.
  const victimId = (await fleetStreams()).get(streams[0]!.id)!;
  const movedIds = [...(await fleetStreams())].filter(([, n]) => n === victimId).map(([id]) => id);
  const page = journalPageSize(LIVE_WINDOW);
  const segmentsOf = async (s: StreamView) => (await loadStoredVariant(store, `live/${s.id}/${broadcasts.get(s.id)}`, "480p", page))?.segments.map((x) => x.uri) ?? [];
  await nodes.get(victimId)!.kill();
  const killedAt = Date.now();
  const storedBefore = new Map<string, string[]>();
  for (const id of movedIds) storedBefore.set(id, await segmentsOf(streams.find((s) => s.id === id)!));
  log(`killed ${victimId} (it carried ${movedIds.length} stream(s)); their broadcasters reconnect through the Streams API`);
  const failovers = await Promise.all(
    movedIds.map(async (id) => {
      const s = streams.find((x) => x.id === id)!;
      await publishers.get(id)!.exited; // its connection dropped with the node
      const reconnectAt = Date.now();
      // Broadcasting software: ask where to publish, try it; a node it cannot reach is named (avoid=) when it asks
      // again, since the edge may still list a node that died a moment ago.
      const unreachable = new Set<string>();
      for (;;) {
        const query = unreachable.size ? `?avoid=${[...unreachable].join(",")}` : "";
        const ingest = await api<{ rtmp: { url: string; node: string | null } }>("GET", `/streams/${id}/ingest${query}`);
        if (ingest.rtmp.node) {
          const p = publish(s, ingest.rtmp.url);
          const result = await Promise.race([p.exited.then(() => "exited" as const), new Promise<"up">((r) => setTimeout(() => r("up"), 1500))]);
          if (result === "up") break;
          unreachable.add(ingest.rtmp.node);
        } else {
          unreachable.clear();
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      const before = new Set(storedBefore.get(id));
      const survivorLog = () => [...nodes.values()].filter((n) => n.nodeId !== victimId).flatMap((n) => n.process.output().split("\n").filter((l) => l.includes(id) && !l.includes('"level":"debug"')));
      await waitFor(`a new segment of ${id} stored by the other node`, async () => (await segmentsOf(s)).some((u) => !before.has(u)), 60_000, 100).catch((error: Error) => {
        for (const l of survivorLog()) log(`  ${l.slice(0, 500)}`);
        throw error;
      });
      const s2 = (Date.now() - reconnectAt) / 1000;
      // Where the time went, from the new node's own log (its lines carry their time).
      const survivor = [...nodes.values()].find((n) => n.nodeId !== victimId)!;
      const at = (re: RegExp) => {
        const line = survivor.process.output().split("\n").find((l) => re.test(l) && l.includes(id));
        const t = line ? Date.parse((JSON.parse(line) as { time: string }).time) : Number.NaN;
        return Number.isFinite(t) ? `${((t - killedAt) / 1000).toFixed(2)} s` : "?";
      };
      log(`${id}: continued after ${s2.toFixed(2)} s (${((Date.now() - killedAt) / 1000).toFixed(2)} s after the kill; on ${survivor.nodeId}: publish accepted at ${at(/"msg":"publish accepted"/)}, FFmpeg started at ${at(/"msg":"ffmpeg started"/)}, live at ${at(/"msg":"stream is live"/)})`);
      if (process.env.BENCH_FLEET_VERBOSE) {
        for (const l of survivor.process.output().split("\n")) if (l.includes(id)) log(`  ${l.slice(0, 400)}`);
      }
      return s2;
    }),
  );

  // Fault 2: the server leading EVENTS dies; probes measure how long until JetStream stores again.
  const ops = await connect(cluster.options("ops"));
  cleanups.push(() => ops.close());
  const jsm = await ops.jetstreamManager();
  const leader = (await jsm.streams.info("EVENTS")).cluster!.leader!;
  const victimNats = cluster.byName(leader);
  let probing = true;
  const probeTimes: { sentAt: number; storedAt: number }[] = [];
  const probes = (async () => {
    const js = ops.jetstream();
    for (let i = 0; probing; i++) {
      const e = makeEvent("media.progress", { mediaId: `probe-${i}`, roomId: "flow-probe", stage: "transcode", percent: 0 }, { source: "media-node/bench", subject: `media/probe-${i}` });
      published.add(e.id);
      const sentAt = Date.now();
      for (;;) {
        try {
          await js.publish(e.type, utf8(JSON.stringify(e)), { msgID: e.id, timeout: 1000 });
          probeTimes.push({ sentAt, storedAt: Date.now() });
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  await new Promise((r) => setTimeout(r, 1000));
  const natsKilledAt = Date.now();
  await victimNats.kill();
  log(`killed NATS server ${leader} (EVENTS leader)`);
  await waitFor("a probe stored after the NATS kill", () => probeTimes.some((p) => p.sentAt > natsKilledAt + 200 || p.storedAt > natsKilledAt + 200), 60_000, 50);
  const firstAfter = probeTimes.find((p) => p.storedAt > natsKilledAt)!;
  const natsFailoverS = (firstAfter.storedAt - natsKilledAt) / 1000;
  await new Promise((r) => setTimeout(r, 5000));
  await victimNats.restart();
  log(`restarted ${leader}; nats_failover_s ${natsFailoverS}`);
  await new Promise((r) => setTimeout(r, 3000));
  probing = false;
  flowing = false;
  await Promise.all([probes, flow]);

  // Wind down: broadcasters stop, every event must reach the edge once.
  for (const p of publishers.values()) await p.stop();
  await bus.drained();
  const stats = async () => (await (await fetch(`${edge.url}/internal/bus/stats`, { headers: auth })).json()) as { appliedTwice: number; byType: Record<string, { applied: number; duplicates: number }> };
  await waitFor("every published event applied at the edge", async () => ((await stats()).byType["media.progress"]?.applied ?? 0) >= published.size, 120_000, 250).catch(() => undefined);
  const s = await stats();
  const applied = s.byType["media.progress"]?.applied ?? 0;

  // Segments stored before the kill that the moved broadcasts no longer list or hold.
  let segmentsLost = 0;
  for (const [id, before] of storedBefore) {
    const stream = streams.find((x) => x.id === id)!;
    const now = new Set(await segmentsOf(stream));
    for (const uri of before) if (!now.has(uri) || !(await store.head(`live/${id}/${broadcasts.get(id)}/480p/${uri}`))) segmentsLost++;
  }

  const result = {
    streams: STREAMS,
    spread,
    failover_s: Number(Math.max(...failovers).toFixed(2)),
    segments_lost: segmentsLost,
    events_lost: Math.max(0, published.size - applied),
    events_duplicated: s.appliedTwice,
    nats_failover_s: Number(natsFailoverS.toFixed(2)),
    moved_streams: movedIds.length,
    failover_each_s: failovers.map((f) => Number(f.toFixed(2))),
    events: published.size,
    events_per_s: RATE,
    lease_ttl_s: Number(NODE_ENV.MEDIA_LEASE_TTL_S),
    segment_s: Number(NODE_ENV.MEDIA_SEGMENT_S),
    baseline_publish_to_live_s: Number(median(baseline).toFixed(2)),
    baseline_method: "median over the 4 first starts of publish accepted -> playable on a node that was there all along",
    load_avg_1m: Number(loadavg()[0]!.toFixed(1)),
  };
  console.log(JSON.stringify(result));
  await cleanup();
  process.exit(0);
}

process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));
main().catch(async (error: Error) => {
  log(`failed: ${error.stack ?? error.message}`);
  await cleanup();
  process.exit(1);
});
