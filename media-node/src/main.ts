// The live media node: RTMP ingest -> one FFmpeg ladder per stream -> segments and playlists to storage ->
// lifecycle events on NATS JetStream; /media/ over public HTTP, /healthz and /metrics on a separate operations
// listener (loopback by default).
//
// Run: `node media-node/src/main.ts` (settings from env: settings/processes.ts says which groups it reads).
// Tests start it in-process with startMediaNode(); node-media-server allows one node per process.

import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type BusConfig, createMediaEventBus, type MediaEventBus } from "./bus/index.ts";
import { DEFAULT_STREAM_NAMES } from "./bus/nats-permissions.ts";
import type { MediaConfig } from "./config.ts";
import { cachedHealth, checkHealth } from "./health/health.ts";
import { probeNats } from "./health/nats-probe.ts";
import { createHttpServer, listen } from "./http/server.ts";
import { createAuthorizer } from "./ingest/authorize.ts";
import { RtmpIngest } from "./ingest/rtmp-server.ts";
import type { IngestLimits } from "./settings/ingest.ts";
import { LiveManager } from "./live/manager.ts";
import type { EventSink } from "./live/session.ts";
import { createLogger, type Logger } from "./log.ts";
import { NodeMetrics } from "./metrics/metrics.ts";
import { ConfigError, readMediaNodeSettings } from "./settings/processes.ts";
import { DEFAULT_STREAM_KEY_SETTINGS, type StreamKeySettings } from "./settings/stream-keys.ts";
import { warmUp } from "./transcode/ffmpeg.ts";
import { createMediaHandler, createObjectStore, FsObjectStore, ReliableUploader, type StorageConfig } from "./storage/index.ts";
import type { VodSettings } from "./settings/vod.ts";
import { VodWorker } from "./vod/worker.ts";
import { createStreamKeys, type StreamKeys } from "./streams/stream-keys.ts";
import { newId } from "../../shared/ids.ts";
import { defaultPublicRtmpUrl, type FleetSettings, fleetSettings } from "./settings/fleet.ts";
import { readSettings } from "../../shared/settings/settings.ts";
import { BroadcastRegistry } from "./fleet/broadcasts.ts";
import { type FleetBuckets, openFleetBuckets } from "./fleet/kv.ts";
import { StreamLeases } from "./fleet/leases.ts";
import { answerAlive, askAlive } from "./fleet/alive.ts";
import { type Heartbeats, startHeartbeats } from "./fleet/heartbeat.ts";
import { journalPageSize } from "./hls/journal.ts";
import type { HealthReport } from "./health/health.ts";
import { EdgeAnnouncer } from "./llhls/announcer.ts";
import { DEFAULT_LLHLS_SETTINGS, type LlhlsSettings } from "./settings/llhls.ts";

export interface MediaNode {
  config: MediaConfig;
  rtmpUrl: string;
  /** public listener: /media/ with the fs storage driver */
  httpUrl: string;
  /** operations listener: /healthz and /metrics */
  opsUrl: string;
  ingest: RtmpIngest;
  live: LiveManager;
  uploader: ReliableUploader;
  metrics: NodeMetrics;
  /** the VOD job worker (absent without a NATS bus or with VOD_WORKERS=0) */
  vod: VodWorker | undefined;
  /** stream-key checks with the edge, when configured */
  streamKeys: StreamKeys | undefined;
  /** this process's id in leases and heartbeats (a restart under the same node id gets a new one) */
  bootId: string;
  /** the heartbeats (absent without a NATS bus) */
  heartbeats: Heartbeats | undefined;
  /**
   * Drains for maintenance: no new streams or VOD jobs, live broadcasts handed over after
   * MEDIA_DRAIN_HANDOFF_AFTER_S, VOD jobs given MEDIA_DRAIN_TIMEOUT_S to finish. Idempotent; stop() after it.
   */
  drain(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartOptions {
  config: MediaConfig;
  storage: StorageConfig;
  /** bus settings (the node runs C1's durable bus), or any EventSink plus its health probe (tests) */
  bus: BusConfig | { sink: EventSink; probe: () => Promise<void> };
  /** RTMP connection limits and pull-credential lifetime (default: settings/ingest.ts defaults) */
  ingestLimits?: IngestLimits;
  /** VOD worker settings; the worker runs when the bus is NATS and VOD_WORKERS > 0 */
  vod?: VodSettings;
  log?: Logger;
  /** stream-key checks with the edge (default: off, as when STREAM_KEYS_EDGE_URL is unset) */
  streamKeys?: StreamKeySettings;
  /** fleet settings: heartbeats, leases, drain (default: the declared defaults; leases and heartbeats need a NATS bus) */
  fleet?: Partial<FleetSettings>;
  /** low-latency HLS: where parts are announced (default: off, as when LLHLS_EDGE_URL is unset) */
  llhls?: LlhlsSettings;
}

export async function startMediaNode(opts: StartOptions): Promise<MediaNode> {
  const { config } = opts;
  const log = opts.log ?? createLogger({ level: config.logLevel, fields: { service: "media-node", nodeId: config.nodeId } });
  await mkdir(config.workDir, { recursive: true });

  void warmUp(config.ffmpegPath);
  const store = createObjectStore(opts.storage.store);
  const uploader = new ReliableUploader(store, opts.storage.uploader);

  const fleetCfg: FleetSettings = { ...readSettings(fleetSettings, {}), ...opts.fleet };
  const bootId = newId("boot");
  let bus: MediaEventBus | undefined;
  let events: EventSink;
  let busProbe: () => Promise<void>;
  if ("sink" in opts.bus) {
    events = opts.bus.sink;
    busProbe = opts.bus.probe;
  } else {
    const busCfg = opts.bus;
    const busLog = log.child({ component: "bus" });
    bus = createMediaEventBus(busCfg, { name: `media-node-${config.nodeId}`, log: (m) => busLog.info(m) });
    await bus.start();
    events = bus;
    busProbe = () => probeNats(busCfg.natsUrl, config.healthTimeoutMs);
  }

  // The fleet's KV buckets, opened once NATS is up (again on the next use if opening failed).
  let buckets: Promise<FleetBuckets> | undefined;
  const fleetBuckets = (): Promise<FleetBuckets> => {
    if (!bus) return Promise.reject(new Error("no NATS bus"));
    const b = bus;
    const busCfg = opts.bus as BusConfig;
    buckets ??= b.connected().then((nc) => openFleetBuckets(nc, { leaseTtlMs: fleetCfg.leaseTtlS * 1000, replicas: busCfg.replicas, timeoutMs: busCfg.publishTimeoutMs }));
    buckets.catch(() => (buckets = undefined));
    return buckets;
  };
  // Other nodes ask whether this one is there before taking over a stream it holds (fleet/alive.ts).
  if (bus) void bus.connected().then((nc) => answerAlive(nc, config.nodeId, bootId));
  const fleet = bus
    ? {
        leases: new StreamLeases({
          owner: { nodeId: config.nodeId, bootId },
          kv: () => fleetBuckets().then((b) => b.leases),
          ttlMs: fleetCfg.leaseTtlS * 1000,
          log: log.child({ component: "leases" }),
          alive: async (nodeId) => {
            const nc = bus?.connection();
            return nc ? askAlive(nc, nodeId) : { state: "unknown" as const };
          },
        }),
        broadcasts: new BroadcastRegistry(() => fleetBuckets().then((b) => b.broadcasts)),
        store,
        journalPage: journalPageSize(config.liveWindow),
      }
    : undefined;

  const streamKeys = createStreamKeys(opts.streamKeys ?? DEFAULT_STREAM_KEY_SETTINGS, log);
  const authorizer = createAuthorizer({ apps: config.apps, secret: config.publishTokenSecret });
  const ingest = new RtmpIngest({
    host: config.rtmpHost,
    port: config.rtmpPort,
    rtmps: config.rtmpsCert && config.rtmpsKey ? { port: config.rtmpsPort, cert: config.rtmpsCert, key: config.rtmpsKey } : undefined,
    storeDir: resolve(config.workDir, ".nms-store"),
    authorize: streamKeys ? streamKeys.wrap(authorizer) : authorizer,
    log,
    limits: opts.ingestLimits,
    // capacity: `live` exists before the first publish can arrive (the listener starts below)
    admit: (streamId, signal) => live.admit(streamId, signal),
  });
  const metrics = new NodeMetrics({ bytesIn: () => ingest.bytesIn(), rtmpConnections: () => ingest.connections().open });
  uploader.on("uploaded", ({ bytes }) => metrics.bytesUploaded(bytes));
  uploader.on("failed", ({ key, error, retryInMs }) => {
    metrics.uploadFailed(/\.m3u8$/.test(key) ? "playlist" : "segment");
    log.warn("upload attempt failed; retrying", { key, error, retryInMs });
  });
  uploader.on("storage", ({ up, error }) => (up ? log.info("storage reachable again") : log.error("storage unreachable; segments wait on local disk", { error })));
  // Files a previous run accepted but could not store (storage was down when it stopped) go out first.
  const recovered = await uploader.recover();
  if (recovered.recovered || recovered.dropped) log.info("uploads from the previous run re-queued", recovered);

  const llhls = opts.llhls ?? DEFAULT_LLHLS_SETTINGS;
  const llLog = log.child({ component: "llhls" });
  const lowLatency =
    llhls.llhlsEdgeUrl && llhls.announceSecrets?.length
      ? {
          partMs: llhls.partMs,
          announcer: (streamId: string, broadcastId: string) => new EdgeAnnouncer({ edgeUrl: llhls.llhlsEdgeUrl!, secrets: llhls.announceSecrets!, timeoutMs: llhls.announceTimeoutMs, log: llLog }, streamId, broadcastId),
        }
      : undefined;
  const live = new LiveManager({
    settings: {
      nodeId: config.nodeId,
      segmentS: config.segmentS,
      ladder: { rungs: config.ladder, passthrough: config.passthrough, separateAudio: config.separateAudio },
      x264Preset: config.x264Preset,
      ffmpegPath: config.ffmpegPath,
      rwTimeoutS: config.rwTimeoutS,
      maxRestarts: config.maxRestarts,
      reconnectGraceS: config.reconnectGraceS,
      liveWindow: config.liveWindow,
      keyPrefix: config.keyPrefix,
      workDir: config.workDir,
      record: config.record,
      drainMaxS: config.drainMaxS,
      shedBelowSpeed: config.shedBelowSpeed,
      shedAfterS: config.shedAfterS,
    },
    uploader,
    publicUrl: (key) => store.publicUrl(key),
    events,
    ingest,
    metrics,
    log,
    metadataWaitMs: config.metadataWaitMs,
    ffprobePath: config.ffprobePath,
    maxLiveStreams: config.maxLiveStreams,
    fleet,
    lowLatency,
  });
  ingest.on("publish", (p) => live.onPublish(p));
  ingest.on("unpublish", (u) => live.onUnpublish(u));
  ingest.on("refused", (r) => metrics.publishRefused(r.reason));
  ingest.on("connectionRefused", (r) => metrics.rtmpRefused(r.reason));
  streamKeys?.attach(ingest, live);

  const http = createHttpServer({ media: store instanceof FsObjectStore ? createMediaHandler(store) : undefined }, log.child({ component: "http" }));
  const health = cachedHealth(
    () => checkHealth({ rtmp: () => ingest.ping(config.healthTimeoutMs), storage: () => store.ping(), bus: busProbe }, config.healthTimeoutMs),
    config.healthCacheMs,
  );
  let draining: Promise<void> | undefined;
  const ops = createHttpServer(
    {
      health,
      metrics: () => metrics.render(),
      draining: () => live.draining,
      drain: () => {
        void drain();
      },
    },
    log.child({ component: "ops-http" }),
  );

  try {
    await ingest.start();
  } catch (error) {
    await streamKeys?.stop();
    await bus?.stop();
    await store.close();
    throw error;
  }
  let httpPort: number;
  let opsPort: number;
  try {
    httpPort = await listen(http, config.httpHost, config.httpPort).catch((error: Error) => {
      throw new Error(`HTTP listener could not start on ${config.httpHost}:${config.httpPort}: ${error.message}`, { cause: error });
    });
    opsPort = await listen(ops, config.opsHost, config.opsPort).catch((error: Error) => {
      http.close();
      throw new Error(`operations listener could not start on ${config.opsHost}:${config.opsPort}: ${error.message}`, { cause: error });
    });
  } catch (error) {
    await streamKeys?.stop();
    await ingest.stop();
    await bus?.stop();
    await store.close();
    throw error;
  }
  let vod: VodWorker | undefined;
  if (opts.vod && opts.vod.vodWorkers > 0 && !("sink" in opts.bus)) {
    const v = opts.vod;
    vod = new VodWorker({
      nodeId: config.nodeId,
      nats: opts.bus,
      consumer: DEFAULT_STREAM_NAMES.jobConsumer,
      concurrency: v.vodWorkers,
      ackWaitMs: v.vodAckWaitS * 1000,
      maxAttempts: v.vodMaxAttempts,
      retryDelayMs: v.vodRetryDelayS * 1000,
      events,
      publicUrl: (key) => store.publicUrl(key),
      log: log.child({ component: "vod" }),
      pipeline: {
        store,
        uploader,
        log: log.child({ component: "vod" }),
        settings: {
          workDir: config.workDir,
          ffmpegPath: config.ffmpegPath,
          ffprobePath: config.ffprobePath,
          keyPrefix: v.vodKeyPrefix,
          segmentS: v.vodSegmentS,
          preset: v.vodX264Preset,
          ...(v.vodX264Params !== "none" ? { x264Params: v.vodX264Params } : {}),
          ladder: { rungs: v.vodLadder, passthrough: false, separateAudio: config.separateAudio },
          limits: { maxDurationS: v.vodMaxDurationS, maxLongSide: v.vodMaxLongSide },
          source: v.vodSourceUrl ? { kind: "http", baseUrl: v.vodSourceUrl, token: v.vodSourceToken } : { kind: "store" },
        },
      },
    });
    try {
      await vod.start();
    } catch (error) {
      http.close();
      ops.close();
      await streamKeys?.stop();
      await ingest.stop();
      await bus?.stop();
      await store.close();
      throw new Error(`VOD worker could not start: ${(error as Error).message}`, { cause: error });
    }
  }
  const rtmpServer = fleetCfg.publicRtmpUrl ?? defaultPublicRtmpUrl(config.rtmpHost, config.rtmpPort, config.apps[0]!);
  let heartbeats: Heartbeats | undefined;
  if (bus) {
    const b = bus;
    heartbeats = startHeartbeats({
      nodeId: config.nodeId,
      bootId,
      rtmpServer,
      intervalMs: fleetCfg.heartbeatIntervalMs,
      connection: () => b.connection(),
      load: async () => {
        const report: HealthReport | undefined = await health().catch(() => undefined);
        const failing = report ? Object.entries(report.checks).filter(([, c]) => !c.ok).map(([name]) => name) : ["health"];
        const streams = live.streamIds();
        return {
          status: live.draining ? "draining" : failing.length > 0 ? "unhealthy" : "ready",
          ...(failing.length > 0 ? { failing } : {}),
          liveStreams: streams.length,
          maxLiveStreams: config.maxLiveStreams,
          streams,
          jobs: vod?.active ?? 0,
          maxJobs: live.draining ? 0 : (vod?.concurrency ?? 0),
        };
      },
      log: log.child({ component: "heartbeat" }),
    });
    // Streams coming and going change the load the edge routes by: say so at once.
    live.on("session", (session) => {
      void heartbeats?.beat();
      session.once("ended", () => void heartbeats?.beat());
    });
    live.startOrphanSweep(Math.max(2000, Math.floor((fleetCfg.leaseTtlS * 1000) / 2)));
  }
  const rtmpUrl = `rtmp://${config.rtmpHost}:${config.rtmpPort}`;
  const httpUrl = `http://${config.httpHost}:${httpPort}`;
  const opsUrl = `http://${config.opsHost}:${opsPort}`;
  log.info("media node ready", { rtmp: rtmpUrl, http: httpUrl, ops: opsUrl, storage: store.kind, apps: config.apps, publishUrl: `${rtmpUrl}/${config.apps[0]}/<streamId>?token=<publish token>`, rtmpServer, bootId });

  const drain = () =>
    (draining ??= (async () => {
      log.info("draining: no new streams or jobs", { handOffAfterS: fleetCfg.drainHandOffAfterS, timeoutS: fleetCfg.drainTimeoutS });
      const jobs = vod?.drain(fleetCfg.drainTimeoutS * 1000);
      const streams = live.drain({ handOffAfterMs: fleetCfg.drainHandOffAfterS * 1000, timeoutMs: fleetCfg.drainTimeoutS * 1000 });
      void heartbeats?.beat();
      const [jobsDone, s] = await Promise.all([jobs, streams]);
      log.info("drained", { handedOff: s.handedOff, streamsInTime: s.inTime, jobsInTime: jobsDone ?? true });
    })());

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info("media node stopping");
      heartbeats?.stop();
      // Jobs in progress go back to the queue at once, for another node.
      await vod?.stop();
      // Order: no new broadcasters; every FFmpeg stopped and ENDLIST written; uploads flushed (bounded); then
      // the bus (unconfirmed events stay in its outbox on disk) and HTTP.
      await streamKeys?.stop();
      const streams = await live.shutdown(15_000);
      await ingest.stop();
      const drained = await uploader.drain(10_000);
      if (!drained) log.warn("uploads still pending at shutdown; their local files are kept", { pending: uploader.stats().pending });
      await uploader.close();
      // Streams that ran out of time finish now that the closed uploader refuses what is left: their stream.ended
      // and media.ready must reach the bus's outbox before it stops (bounded, in case one is stuck on FFmpeg).
      if (!streams.inTime) {
        let timer: NodeJS.Timeout | undefined;
        const late = await Promise.race([streams.ended.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), 10_000)))]);
        clearTimeout(timer);
        if (late) log.warn("shutdown: some streams still had not ended; their events may be missing");
      }
      await bus?.stop();
      await Promise.all([http, ops].map((server) => new Promise<void>((r) => server.close(() => r()))));
      http.closeAllConnections();
      ops.closeAllConnections();
      await store.close();
      log.info("media node stopped");
    })());

  return { config, rtmpUrl, httpUrl, opsUrl, ingest, live, uploader, metrics, vod, streamKeys, bootId, heartbeats, drain, stop };
}

async function main(): Promise<void> {
  const log = createLogger({ fields: { service: "media-node" } });
  let node: MediaNode;
  try {
    const { config, storage, bus, ingest, vod, streamKeys, fleet, llhls } = readMediaNodeSettings();
    node = await startMediaNode({ config, storage, bus, ingestLimits: ingest, vod, streamKeys, fleet, llhls });
  } catch (error) {
    log.error(error instanceof ConfigError ? error.message : "media node failed to start", { error });
    process.exit(1);
  }
  let signals = 0;
  const onSignal = (signal: string) => {
    if (++signals > 1) {
      log.warn("second signal: exiting now", { signal });
      process.exit(1);
    }
    log.info("signal received", { signal });
    // SIGTERM (systemd stop, a rolling upgrade) drains first: live broadcasts move to other nodes, VOD jobs
    // finish. SIGINT (Ctrl-C) stops at once.
    (signal === "SIGTERM" ? node.drain() : Promise.resolve())
      .then(() => node.stop())
      .then(
      () => process.exit(0),
      (error: unknown) => {
        log.error("shutdown failed", { error });
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) void main();
