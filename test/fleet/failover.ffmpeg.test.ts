// One owner per live stream across two real media-node processes (real FFmpeg, real nats-server with the shipped
// permissions, one shared storage folder as one bucket in production):
// - a second node asked to publish a stream that is live on the first refuses it (`owned-elsewhere`);
// - the owner is SIGKILLed mid-broadcast (with its FFmpeg): its lease expires within MEDIA_LEASE_TTL_S, the
//   broadcaster's reconnect to the other node continues the same broadcast: same broadcast id and folder, the
//   playlist goes on after EXT-X-DISCONTINUITY with its media sequence still growing, no stored segment is lost,
//   and the recording (VOD playlist) holds both nodes' segments;
// - the room hears stream.started (resumed) from the second node and one stream.ended at the end.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Envelope } from "../../shared/envelope.ts";
import { mintPublishToken } from "../../shared/tokens/publish-token.ts";
import { journalPageSize, loadStoredVariant, parseMediaPlaylist } from "../../media-node/src/hls/journal.ts";
import { FsObjectStore } from "../../media-node/src/storage/fs-store.ts";
import { TEST_SECRETS } from "../helpers/edge.ts";
import { publishTestSource } from "../helpers/ffmpeg.ts";
import { type MediaNodeProcess, startMediaNodeProcess } from "../helpers/media-node.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";
import type { GroupProcess } from "../helpers/process.ts";
import { waitFor } from "../helpers/wait.ts";

const STREAM = "failover";
const LIVE_WINDOW = 6;
const NODE_ENV = {
  MEDIA_LADDER: "240p",
  MEDIA_SEGMENT_S: "1",
  MEDIA_X264_PRESET: "ultrafast",
  MEDIA_LIVE_WINDOW: String(LIVE_WINDOW),
  MEDIA_LEASE_TTL_S: "3",
  MEDIA_RECONNECT_GRACE_S: "3",
  MEDIA_HEARTBEAT_INTERVAL_MS: "500",
};

describe("a live stream survives the death of its node", () => {
  let nats: NatsServer;
  let root: string;
  let store: FsObjectStore;
  let a: MediaNodeProcess;
  let b: MediaNodeProcess;
  let nc: NatsConnection;
  const publishers: GroupProcess[] = [];
  let url: (node: MediaNodeProcess) => string;

  beforeAll(async () => {
    nats = await startNats();
    root = await mkdtemp(join(tmpdir(), "pulsecast-failover-"));
    const storeDir = join(root, "store");
    store = new FsObjectStore({ dir: storeDir, publicBaseUrl: "http://unused.test/media" });
    [a, b] = (await Promise.all(["node-a", "node-b"].map((nodeId) => startMediaNodeProcess({ nodeId, natsEnv: nats.env("media-node"), storeDir, root, env: NODE_ENV })))) as [MediaNodeProcess, MediaNodeProcess];
    nc = await connect(nats.options("ops"));
    const token = await mintPublishToken(TEST_SECRETS.PUBLISH_TOKEN_SECRET, { sid: STREAM, app: "live", scope: "publish", exp: Math.floor(Date.now() / 1000) + 600, room: "failover-room" });
    url = (node) => `${node.rtmpBase}/${STREAM}?token=${token}`;
  });
  afterAll(async () => {
    for (const p of publishers) await p.kill();
    await a?.kill();
    await b?.stop();
    await nc?.close();
    await nats?.stop();
    await rm(root, { recursive: true, force: true });
  });

  /** the stored live playlist of the stream's current broadcast, parsed */
  async function livePlaylist(broadcastId: string) {
    const obj = await store.get(`live/${STREAM}/${broadcastId}/240p/index.m3u8`);
    return obj ? parseMediaPlaylist(Buffer.from(obj.body).toString("utf8")) : undefined;
  }

  async function events(): Promise<Envelope[]> {
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info("EVENTS");
    const out: Envelope[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage("EVENTS", { seq }).catch(() => undefined);
      if (m) out.push(m.json<Envelope>());
    }
    return out.filter((e) => (e.data as { streamId?: string }).streamId === STREAM);
  }

  it("refuses the stream on the second node while the first carries it, then continues it there once the first dies", async () => {
    const first = publishTestSource(url(a), { size: "426x240", gop: 30 });
    publishers.push(first);
    const live = await a.process.waitForOutput(/"msg":"stream is live"[^\n]*"broadcastId":"(brd_[^"]+)"/, 60_000);
    const broadcastId = live[1]!;
    await waitFor("a few segments stored by node-a", async () => ((await livePlaylist(broadcastId))?.segments.length ?? 0) >= 4, 30_000, 200);

    // The same stream at the other node: refused while node-a is alive (it renews its lease).
    const intruder = publishTestSource(url(b), { size: "426x240" });
    publishers.push(intruder);
    await b.process.waitForOutput(/"msg":"publish refused"[^\n]*"reason":"owned-elsewhere"/, 15_000);
    await intruder.exited;
    expect(a.process.output()).not.toMatch(/"msg":"stream ended"/);

    // Let node-a store well past one journal page and one live window, then kill it (with its FFmpeg).
    await waitFor("segments past a live window", async () => {
      const p = await livePlaylist(broadcastId);
      return p && p.mediaSequence + p.segments.length >= LIVE_WINDOW + journalPageSize(LIVE_WINDOW) + 2;
    }, 60_000, 200);
    await a.kill();
    const page = journalPageSize(LIVE_WINDOW);
    const beforeKill = (await loadStoredVariant(store, `live/${STREAM}/${broadcastId}`, "240p", page))!;
    const storedByA = beforeKill.segments.map((s) => s.uri);
    const sequenceAtKill = (await livePlaylist(broadcastId))!.mediaSequence;
    // The broadcaster's connection dropped with the node; it reconnects to the other node at once.
    await first.exited;
    const reconnectAt = Date.now();
    const second = publishTestSource(url(b), { size: "426x240", gop: 30 });
    publishers.push(second);
    await b.process.waitForOutput(/"msg":"continuing a broadcast another node started/, 30_000);
    // the first new segment node-b stores, listed after node-a's
    await waitFor("node-b's first segment in the playlist", async () => {
      const p = await livePlaylist(broadcastId);
      return p && p.segments.some((s) => !storedByA.includes(s.uri));
    }, 30_000, 100);
    const failoverS = (Date.now() - reconnectAt) / 1000;
    // lease TTL (3 s) + FFmpeg start + one 1 s segment, with room for a loaded machine
    expect(failoverS).toBeLessThan(15);

    const after = (await livePlaylist(broadcastId))!;
    expect(after.ended).toBe(false);
    expect(after.mediaSequence).toBeGreaterThanOrEqual(sequenceAtKill);
    const firstOfB = after.segments.findIndex((s) => !storedByA.includes(s.uri));
    expect(firstOfB).toBeGreaterThan(0); // the window still shows node-a's last segments before it
    expect(after.segments[firstOfB]!.discontinuity).toBe(true);
    const epochsA = new Set(storedByA.map((u) => u.split("-")[0]));
    expect(epochsA.has(after.segments[firstOfB]!.uri.split("-")[0]!)).toBe(false); // new object names, nothing overwritten

    // The broadcaster stops: node-b ends the broadcast after the grace window.
    await second.stop();
    await b.process.waitForOutput(/"msg":"stream ended"[^\n]*"reason":"publisher-left"/, 60_000);
    const vod = parseMediaPlaylist(Buffer.from((await store.get(`live/${STREAM}/${broadcastId}/240p/vod.m3u8`))!.body).toString("utf8"));
    const vodUris = vod.segments.map((s) => s.uri);
    // every segment node-a had stored is in the recording, in order, followed by node-b's
    expect(vodUris.slice(0, storedByA.length)).toEqual(storedByA);
    expect(vodUris.length).toBeGreaterThan(storedByA.length);
    expect(vod.segments[storedByA.length]!.discontinuity).toBe(true);
    for (const uri of vodUris) expect(await store.head(`live/${STREAM}/${broadcastId}/240p/${uri}`), uri).not.toBeNull();
    const final = (await livePlaylist(broadcastId))!;
    expect(final.ended).toBe(true);

    // What the room hears: node-a started it, node-b resumed the same broadcast, one end.
    await waitFor("stream.ended on the bus", async () => (await events()).some((e) => e.type === "stream.ended"), 20_000, 200);
    const seen = (await events()).map((e) => ({ type: e.type, node: (e.data as { nodeId?: string }).nodeId, resumed: (e.data as { resumed?: boolean }).resumed, broadcastId: (e.data as { broadcastId?: string }).broadcastId }));
    expect(seen.filter((e) => e.type === "stream.started")).toEqual([
      { type: "stream.started", node: "node-a", resumed: false, broadcastId },
      { type: "stream.started", node: "node-b", resumed: true, broadcastId },
    ]);
    expect(seen.filter((e) => e.type === "stream.ended")).toEqual([{ type: "stream.ended", node: "node-b", resumed: undefined, broadcastId }]);
    // The broadcast is over for the fleet: no state left, the lease free.
    const kv = await nc.jetstream().views.kv("LIVE_BROADCASTS");
    expect((await kv.get(STREAM))?.operation ?? "none").not.toBe("PUT");
  });
});
