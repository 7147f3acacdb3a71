// A real media node for FFmpeg tests, started in this process (node-media-server allows one per process, and
// vitest gives every test file its own worker): a real nats-server with JetStream, the fs storage driver in a
// temp folder, free ports on 127.0.0.1. Events are read straight off NATS, logs are captured for assertions.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { parseEventJson, type Envelope } from "../../shared/envelope.ts";
import { mintPublishToken, type PublishClaims } from "../../shared/tokens/publish-token.ts";
import { busConfig } from "../../media-node/src/bus/index.ts";
import { loadConfig } from "../../media-node/src/config.ts";
import { createLogger, type LogFields } from "../../media-node/src/log.ts";
import type { LiveSession, LiveSessionEvents } from "../../media-node/src/live/session.ts";
import { type MediaNode, startMediaNode } from "../../media-node/src/main.ts";
import { createObjectStore, DEFAULT_UPLOADER_CONFIG, FsObjectStore, type ObjectStore, type StorageConfig } from "../../media-node/src/storage/index.ts";
import { TEST_SECRETS } from "../helpers/edge.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";
import { waitFor } from "../helpers/wait.ts";

export interface MediaFixture {
  node: MediaNode;
  nats: NatsServer;
  /** read access to what the node stored */
  store: ObjectStore;
  storeDir: string;
  /** every event seen on NATS (stream.*, media.*), parsed and schema-checked */
  events: Envelope[];
  /** every log record the node wrote */
  logs: (LogFields & { level: string; msg: string })[];
  rtmpBase: string;
  /** a valid publish token for `sid`, with overrides for the refusal cases */
  token(sid: string, overrides?: Partial<PublishClaims>, secret?: string): Promise<string>;
  waitForEvent<T extends Envelope["type"]>(type: T, match?: (e: Extract<Envelope, { type: T }>) => boolean, timeoutMs?: number): Promise<Extract<Envelope, { type: T }>>;
  stop(): Promise<void>;
}

export interface FixtureOptions {
  /** storage other than the default fs folder (e.g. s3rver); `store` then reads through it */
  storage?: StorageConfig;
}

export async function startMediaFixture(env: Record<string, string> = {}, opts: FixtureOptions = {}): Promise<MediaFixture> {
  const [rtmpPort, httpPort, nats] = await Promise.all([freePort(), freePort(), startNats()]);
  const root = await mkdtemp(join(tmpdir(), "pulsecast-media-"));
  const storeDir = join(root, "store");
  const config = loadConfig({
    MEDIA_NODE_ID: "test-node",
    MEDIA_RTMP_PORT: String(rtmpPort),
    MEDIA_HTTP_PORT: String(httpPort),
    MEDIA_OPS_PORT: "0",
    MEDIA_WORK_DIR: join(root, "work"),
    PUBLISH_TOKEN_SECRET: TEST_SECRETS.PUBLISH_TOKEN_SECRET,
    // small ladder for a small source: keeps the suite fast on 2 cores
    MEDIA_LADDER: "360p,240p",
    MEDIA_X264_PRESET: "ultrafast",
    MEDIA_LOG_LEVEL: "debug",
    ...env,
  });
  const logs: MediaFixture["logs"] = [];
  const log = createLogger({ level: "debug", sink: (_line, record) => void logs.push(record), fields: { nodeId: "test-node" } });
  const node = await startMediaNode({
    config,
    storage: opts.storage ?? { store: { driver: "fs", dir: storeDir, publicBaseUrl: `http://127.0.0.1:${httpPort}/media` }, uploader: { ...DEFAULT_UPLOADER_CONFIG, retryBaseMs: 50, retryMaxMs: 500 } },
    bus: busConfig({ ...nats.settings("media-node"), outboxDir: join(root, "outbox") }),
    log,
  });

  const events: Envelope[] = [];
  const nc: NatsConnection = await connect(nats.options());
  for (const subject of ["stream.>", "media.>"]) {
    const sub = nc.subscribe(subject);
    void (async () => {
      for await (const m of sub) {
        const parsed = parseEventJson(new TextDecoder().decode(m.data));
        if (!parsed.ok) throw new Error(`malformed event on ${m.subject}: ${parsed.error}`);
        events.push(parsed.event);
      }
    })();
  }
  await nc.flush();

  return {
    node,
    nats,
    store: opts.storage ? createObjectStore(opts.storage.store) : new FsObjectStore({ dir: storeDir, publicBaseUrl: `http://127.0.0.1:${httpPort}/media` }),
    storeDir,
    events,
    logs,
    rtmpBase: `rtmp://127.0.0.1:${rtmpPort}`,
    token: (sid, overrides = {}, secret = TEST_SECRETS.PUBLISH_TOKEN_SECRET) =>
      mintPublishToken(secret, { sid, app: "live", scope: "publish", exp: Math.floor(Date.now() / 1000) + 600, sub: "broadcaster-1", ...overrides }),
    waitForEvent: (type, match = () => true, timeoutMs = 30_000) =>
      waitFor(`event ${type}`, () => events.find((e) => e.type === type && match(e as never)) as never, timeoutMs),
    async stop() {
      await node.stop();
      await nc.close();
      await nats.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Resolves after `n` more segments of `variant` were stored by this session. */
export function nextSegments(session: LiveSession, n: number, variant = "240p"): Promise<LiveSessionEvents["segment"][0][]> {
  return new Promise((resolve) => {
    const got: LiveSessionEvents["segment"][0][] = [];
    const on = (s: LiveSessionEvents["segment"][0]) => {
      if (s.variant !== variant) return;
      got.push(s);
      if (got.length >= n) {
        session.off("segment", on);
        resolve(got);
      }
    };
    session.on("segment", on);
  });
}
