// A real media node for FFmpeg tests, started in this process (node-media-server allows one per process, and
// vitest gives every test file its own worker): a real nats-server with JetStream, the fs storage driver in a
// temp folder, free ports on 127.0.0.1. Events are read straight off NATS, logs are captured for assertions.

import { EventEmitter } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { parseEventJson, type Envelope } from "../../shared/envelope.ts";
import { mintPublishToken, type PublishClaims } from "../../shared/tokens/publish-token.ts";
import { busConfig } from "../../media-node/src/bus/index.ts";
import { loadConfig } from "../../media-node/src/config.ts";
import { createLogger, type LogFields } from "../../media-node/src/log.ts";
import type { LiveSession, LiveSessionEvents, SessionState } from "../../media-node/src/live/session.ts";
import { type MediaNode, startMediaNode } from "../../media-node/src/main.ts";
import type { StreamKeySettings } from "../../media-node/src/settings/stream-keys.ts";
import type { LlhlsSettings } from "../../media-node/src/settings/llhls.ts";
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
  /** every live session the node began, each recorded from its creation (nothing it emits can be missed) */
  sessions: SessionRecorder[];
  /** the first session for `streamId` that begins after this call (call it before publishing) */
  nextSession(streamId: string, timeoutMs?: number): Promise<SessionRecorder>;
  /** a valid publish token for `sid`, with overrides for the refusal cases */
  token(sid: string, overrides?: Partial<PublishClaims>, secret?: string): Promise<string>;
  waitForEvent<T extends Envelope["type"]>(type: T, match?: (e: Extract<Envelope, { type: T }>) => boolean, timeoutMs?: number): Promise<Extract<Envelope, { type: T }>>;
  stop(): Promise<void>;
}

export interface FixtureOptions {
  /** storage other than the default fs folder (e.g. s3rver); `store` then reads through it */
  storage?: StorageConfig;
  /** stream-key checks with an edge (Streams API keys), off by default as on a node without STREAM_KEYS_EDGE_URL */
  streamKeys?: StreamKeySettings;
  /** low-latency HLS announcements (off by default, as on a node without LLHLS_EDGE_URL) */
  llhls?: LlhlsSettings;
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
    // Overload handling is tested where it is the subject (overload, shed-backlog): elsewhere a loaded test
    // machine must not shed rungs or refuse a test's second stream.
    MEDIA_SHED_BELOW_SPEED: "0",
    MEDIA_MAX_LIVE_STREAMS: "100",
    ...env,
  });
  const logs: MediaFixture["logs"] = [];
  const log = createLogger({ level: "debug", sink: (_line, record) => void logs.push(record), fields: { nodeId: "test-node" } });
  const node = await startMediaNode({
    config,
    storage: opts.storage ?? { store: { driver: "fs", dir: storeDir, publicBaseUrl: `http://127.0.0.1:${httpPort}/media` }, uploader: { ...DEFAULT_UPLOADER_CONFIG, retryBaseMs: 50, retryMaxMs: 500 } },
    bus: busConfig({ ...nats.settings("media-node"), outboxDir: join(root, "outbox") }),
    log,
    ...(opts.streamKeys ? { streamKeys: opts.streamKeys } : {}),
    ...(opts.llhls ? { llhls: opts.llhls } : {}),
  });

  const sessions: SessionRecorder[] = [];
  const sessionBegan = new EventEmitter();
  // Synchronous with the session's creation, before start(): the recorder sees every event the session emits.
  node.live.on("session", (session) => {
    sessions.push(new SessionRecorder(session));
    sessionBegan.emit("change");
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
    sessions,
    nextSession(streamId, timeoutMs = 30_000) {
      const from = sessions.length;
      return untilChanged(sessionBegan, `a session for ${streamId}`, () => sessions.slice(from).find((r) => r.session.streamId === streamId), timeoutMs);
    },
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

export type SegmentInfo = LiveSessionEvents["segment"][0];
export type RunInfo = LiveSessionEvents["run"][0];
export type LiveInfo = LiveSessionEvents["live"][0];
export type EndedInfo = LiveSessionEvents["ended"][0];

/**
 * Records everything a live session emits from the moment it exists, so a test awaits on the recorded history
 * instead of adding a listener late (an event that came before the listener would be waited for forever).
 */
export class SessionRecorder {
  readonly segments: SegmentInfo[] = [];
  readonly runs: RunInfo[] = [];
  readonly states: SessionState[] = [];
  live: LiveInfo | undefined;
  ended: EndedInfo | undefined;
  readonly #changed = new EventEmitter();

  readonly session: LiveSession;

  constructor(session: LiveSession) {
    this.session = session;
    const record = <T>(list: T[]) => (x: T) => {
      list.push(x);
      this.#changed.emit("change");
    };
    session.on("segment", record(this.segments));
    session.on("run", record(this.runs));
    session.on("state", ({ to }) => record(this.states)(to));
    session.on("live", (x) => {
      this.live = x;
      this.#changed.emit("change");
    });
    session.on("ended", (x) => {
      this.ended = x;
      this.#changed.emit("change");
    });
  }

  /** Resolves with `check()`'s first truthy value, re-checked after every recorded event; a clear error after `timeoutMs`. */
  until<T>(what: string, check: () => T | undefined | false | null, timeoutMs = 60_000): Promise<T> {
    return untilChanged(this.#changed, what, check, timeoutMs);
  }

  segmentsOf(variant = "240p"): SegmentInfo[] {
    return this.segments.filter((s) => s.variant === variant);
  }

  /** The next `n` segments of `variant` stored after this call. */
  nextSegments(n: number, variant = "240p", timeoutMs = 60_000): Promise<SegmentInfo[]> {
    const from = this.segmentsOf(variant).length;
    return this.until(`${n} more ${variant} segments`, () => {
      const got = this.segmentsOf(variant).slice(from);
      return got.length >= n ? got.slice(0, n) : undefined;
    }, timeoutMs);
  }

  /** Resolves once `n` segments of `variant` were stored in all (counting from the session's start). */
  segmentCount(n: number, variant = "240p", timeoutMs = 60_000): Promise<SegmentInfo[]> {
    return this.until(`${n} ${variant} segments in all`, () => (this.segmentsOf(variant).length >= n ? this.segmentsOf(variant) : undefined), timeoutMs);
  }

  whenLive(timeoutMs = 60_000): Promise<LiveInfo> {
    return this.until("the session to go live", () => this.live, timeoutMs);
  }

  whenEnded(timeoutMs = 60_000): Promise<EndedInfo> {
    return this.until("the session to end", () => this.ended, timeoutMs);
  }

  /** Resolves once the session has been in `state` (now or at any time since it began). */
  whenState(state: SessionState, timeoutMs = 30_000): Promise<SessionState> {
    return this.until(`state ${state}`, () => this.states.find((s) => s === state), timeoutMs);
  }
}

function untilChanged<T>(changed: EventEmitter, what: string, check: () => T | undefined | false | null, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      changed.off("change", test);
    };
    const test = () => {
      let value: T | undefined | false | null;
      try {
        value = check();
      } catch (error) {
        done();
        return reject(error);
      }
      if (value) {
        done();
        resolve(value);
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    changed.on("change", test);
    test();
  });
}
