// The whole VOD path on one machine, every part real and on 127.0.0.1: nats-server (authorization on), the edge
// under `wrangler dev` (R2 and Durable Objects simulated by workerd), both bridges, and one media-node process
// whose VOD worker reads upload sources from the edge (VOD_SOURCE_URL) and stores outputs in an fs folder it
// serves over HTTP. Viewers play through the edge's /play, which pulls from that folder (PLAYBACK_ORIGIN_URL), as
// `npm start` runs it. Used by the end-to-end test and by `npm run bench:vod`.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { type Envelope, parseEvent } from "../../shared/envelope.ts";
import { startHttpToNatsBridge, startNatsToHttpBridge, type BridgeProcess } from "../helpers/bridges.ts";
import { type EdgeServer, ROOT, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";
import { type GroupProcess, spawnGroup } from "../helpers/process.ts";
import { TusClient } from "../../edge/test/videos/tus-client.ts";

export interface VodStack {
  nats: NatsServer;
  edge: EdgeServer;
  node: GroupProcess;
  /** the node's HTTP serving fs-stored outputs (the edge's playback origin) */
  mediaUrl: string;
  root: string;
  /** every media.* event seen on NATS, with the time it was seen */
  events: { at: number; event: Envelope }[];
  waitForEvent(type: string, mediaId: string, timeoutMs?: number): Promise<{ at: number; event: Envelope }>;
  tus(userId: string, chunkSize: number): Promise<TusClient>;
  api(userId: string, path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
}

export async function startVodStack(nodeEnv: Record<string, string> = {}): Promise<VodStack> {
  const root = await mkdtemp(join(tmpdir(), "pulsecast-vod-stack-"));
  const nats = await startNats();
  const toNats = await startHttpToNatsBridge({ nats });
  const [rtmp, http, ops] = [await freePort(), await freePort(), await freePort()];
  const mediaUrl = `http://127.0.0.1:${http}/media`;
  const edgePort = await freePort();
  const edge = await startEdge(
    { BRIDGE_URL: toNats.url, PLAYBACK_BASE_URL: `http://127.0.0.1:${edgePort}`, PLAYBACK_ORIGIN_URL: mediaUrl },
    { port: edgePort, persistDir: join(root, "edge") },
  );
  const toEdge = await startNatsToHttpBridge({ nats, edgeUrl: `${edge.url}/hooks/events` });
  const node = spawnGroup(process.execPath, [join(ROOT, "media-node/src/main.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...nats.env("media-node"),
      PUBLISH_TOKEN_SECRET: TEST_SECRETS.PUBLISH_TOKEN_SECRET,
      MEDIA_NODE_ID: "vod1",
      MEDIA_RTMP_PORT: String(rtmp),
      MEDIA_HTTP_PORT: String(http),
      MEDIA_OPS_PORT: String(ops),
      MEDIA_WORK_DIR: join(root, "work"),
      OUTBOX_DIR: join(root, "outbox"),
      STORAGE_DRIVER: "fs",
      STORAGE_FS_DIR: join(root, "store"),
      VOD_SOURCE_URL: `${edge.url}/internal/media`,
      VOD_SOURCE_TOKEN: TEST_SECRETS.INTERNAL_API_TOKEN,
      ...nodeEnv,
    },
  });
  await node.waitForOutput(/"msg":"vod worker pulling jobs"/, 60_000);

  const ops$: NatsConnection = await connect(nats.options("ops"));
  const events: VodStack["events"] = [];
  const waiters = new Set<() => void>();
  const sub = ops$.subscribe("media.>");
  void (async () => {
    for await (const m of sub) {
      const parsed = parseEvent(m.json());
      if (!parsed.ok) continue;
      events.push({ at: performance.now(), event: parsed.event });
      for (const w of waiters) w();
    }
  })();

  const bridges: BridgeProcess[] = [toNats, toEdge];
  return {
    nats,
    edge,
    node,
    mediaUrl,
    root,
    events,
    waitForEvent(type, mediaId, timeoutMs = 120_000) {
      return new Promise((resolve, reject) => {
        const find = () => events.find((e) => e.event.type === type && (e.event.data as { mediaId?: string }).mediaId === mediaId);
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${type} for ${mediaId} within ${timeoutMs} ms; node log tail:\n${node.output().slice(-3000)}`));
        }, timeoutMs);
        const check = () => {
          const hit = find();
          if (!hit) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(hit);
        };
        waiters.add(check);
        check();
      });
    },
    async tus(userId, chunkSize) {
      const token = await mintHs256(TEST_SECRETS.JWT_SECRET, { sub: userId });
      return new TusClient({ fetch: (url, init) => fetch(url, init), endpoint: `${edge.url}/uploads`, token, chunkSize, store: new Map() });
    },
    async api(userId, path, init = {}) {
      const headers = new Headers(init.headers);
      headers.set("Authorization", `Bearer ${await mintHs256(TEST_SECRETS.JWT_SECRET, { sub: userId })}`);
      return fetch(`${edge.url}${path}`, { ...init, headers });
    },
    async stop() {
      await ops$.close().catch(() => undefined);
      await node.stop();
      for (const b of bridges) await b.stop();
      await edge.stop();
      await nats.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}
