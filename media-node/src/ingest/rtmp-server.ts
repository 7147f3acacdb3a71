// The ONE module that touches node-media-server (v4: RTMP/RTMPS ingest only). Everything NMS does that a
// service must not do is contained here:
// - it cannot refuse a publish from `prePublish` (the client already got "Publish.Start"): we decide there,
//   close refused sessions ourselves and keep our own bookkeeping, so its later `postPublish` is ignored;
// - its session.close() is only socket.end(): a client that ignores the FIN keeps sending, NMS keeps reading,
//   and a refused publisher keeps the stream's slot in NMS (the real broadcaster then gets "already has a
//   publisher") with its media cached for our FFmpeg. Every connection we end is destroyed, and a refused
//   publisher's slot in NMS is released at once (not held for NMS's 30 s resume window);
// - its `donePublish` fires 30 s after the publisher left: we watch the socket and report `unpublish` at once;
// - it calls process.exit(1) on EADDRINUSE: start() rejects instead;
// - it forces its logger to debug on console.log: its lines go to our JSON logger at debug level;
// - it keeps state under ./data and installs SIGINT/SIGTERM handlers: the store lives in our work dir and the
//   handlers are removed, so main.ts alone decides how the process stops;
// - anyone could play any stream: only our own FFmpeg and ffprobe may, each start with its own single-use,
//   loopback-only pull credential for one stream (pull-credentials.ts);
// - it never closes a connection on its own: a connection must reach an accepted publish or play within the
//   handshake timeout, and connections over the per-address or total cap are refused as they arrive
//   (connection-gate.ts). NMS's own connection handler only ever sees admitted sockets.
// NMS keeps its config in a module singleton: one RtmpIngest per process.

import { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import { connect, isIP, type Server, type Socket } from "node:net";
import NodeMediaServer, { type NmsSession } from "node-media-server";
import type { Logger } from "../log.ts";
import { type EarlyVerdict, type PublishAuthorizer, type PublishRequest, type Refusal } from "./authorize.ts";
import { aacChannelsOfFlvTag } from "./aac-config.ts";
import { ConnectionGate, type ConnectionRefusalReason, isLoopback, normalizeAddress } from "./connection-gate.ts";
import { PullCredentials, type PullRefusalReason } from "./pull-credentials.ts";
import { DEFAULT_INGEST_LIMITS, type IngestLimits } from "../settings/ingest.ts";
import type { PublishClaims } from "../../../shared/tokens/publish-token.ts";

export interface RtmpIngestOptions {
  host: string;
  port: number;
  rtmps?: { port: number; cert: string; key: string } | undefined;
  /** folder for NMS's own JSON store (it insists on having one) */
  storeDir: string;
  authorize: PublishAuthorizer;
  log: Logger;
  /** connection limits and pull-credential lifetime (defaults: settings.ts) */
  limits?: Partial<IngestLimits> | undefined;
  /**
   * asked for every authorized publish: can the node take this stream now? (capacity, the fleet's lease; default:
   * always). It may take a while (a lease held by a node that died expires first); `signal` aborts when the
   * publisher leaves meanwhile. An accepted verdict's `abandon` is called if the publish does not start after all.
   */
  admit?: ((streamId: string, signal: AbortSignal) => EarlyVerdict | Promise<EarlyVerdict & { abandon?: () => void }>) | undefined;
}

/** What the publisher announced in its RTMP metadata (onMetaData); absent fields mean "no such track". */
export interface SourceHints {
  video?: { width: number; height: number; fps: number | undefined; codecId: number | undefined };
  audio?: {
    codecId: number | undefined;
    /** from the AAC sequence header when it arrived; else 2 if the metadata says stereo; else unknown */
    channels: number | undefined;
    sampleRate: number | undefined;
    /** `channels` was read from the AAC sequence header */
    channelsFromConfig: boolean;
  };
}

/** FLV audio codec id of AAC */
export const FLV_AUDIO_AAC = 10;

export interface AuthorizedPublish {
  sessionId: string;
  streamId: string;
  app: string;
  ip: string;
  claims: PublishClaims;
  /**
   * Wall-clock ms at which the broadcaster asked to publish: it is told "Publish.Start" at once and sends its
   * first frames then, while the token (and the edge's key check) is still being verified.
   */
  requestedAt: number;
  /** RTMP metadata once it arrived, undefined before */
  hints(): SourceHints | undefined;
}

export interface RtmpIngestEvents {
  /** an authorized broadcaster is publishing */
  publish: [AuthorizedPublish];
  /** that broadcaster's connection closed (reported at once, not NMS's 30 s later) */
  unpublish: [{ sessionId: string; streamId: string; app: string }];
  /** a publish was refused; the connection is closed */
  refused: [Refusal & { sessionId: string; ip: string; app: string; name: string }];
  /** a connection was refused or closed by the limits, or a play was refused; the connection is closed */
  connectionRefused: [{ reason: ConnectionRefusalReason | PullRefusalReason; address: string; detail: string }];
  /**
   * one of the node's own pulls (ffprobe or FFmpeg) was admitted; it receives the stream from here on (NMS replays
   * its cache from the last video keyframe, so an audio-only stream's earlier media does not reach it)
   */
  pull: [{ sessionId: string; path: string }];
}

type NmsLogger = { log(message: string, level?: string): void; level: string };

const require = createRequire(import.meta.url);

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** A publish RTMP name as the broadcaster sent it (NMS blanks streamName when it dislikes it). */
function rawName(session: NmsSession): string {
  return session.streamName || session.rtmp?.streamName || "";
}

export class RtmpIngest extends EventEmitter<RtmpIngestEvents> {
  readonly #opts: RtmpIngestOptions;
  readonly #log: Logger;
  #nms: NodeMediaServer | undefined;
  /** stream id -> session id of its current (or pending) publisher: the "one publisher per key" rule */
  readonly #publishers = new Map<string, string>();
  /** sessions we accepted, by id */
  readonly #accepted = new Map<string, { session: NmsSession; streamId: string; app: string }>();
  /** our FFmpeg pulls, by stream path: closed when the publisher leaves (see #onPublisherClosed) */
  readonly #players = new Map<string, Set<NmsSession>>();
  /** bytes received from publishers that have since left (for the bytes-in counter) */
  #bytesInDone = 0;
  readonly #limits: IngestLimits;
  readonly #gate: ConnectionGate;
  /** one single-use credential per FFmpeg/ffprobe start: only they may play from the RTMP port */
  readonly #pulls: PullCredentials;
  /** our listeners on NMS's process-wide emitter, removed by stop() */
  #nmsListeners: [string, (session: NmsSession) => void][] = [];

  constructor(opts: RtmpIngestOptions) {
    super();
    this.#opts = opts;
    this.#log = opts.log.child({ component: "rtmp" });
    this.#limits = { ...DEFAULT_INGEST_LIMITS, ...stripUndefined(opts.limits ?? {}) };
    this.#gate = new ConnectionGate(this.#limits, (refusal) => {
      this.#log.warn("rtmp connection refused", { ...refusal });
      this.emit("connectionRefused", refusal);
    });
    this.#pulls = new PullCredentials({ ttlMs: this.#limits.pullTtlMs });
  }

  async start(): Promise<void> {
    if (pullHost(this.#opts.host) === undefined) {
      throw new Error(
        `RTMP listener address ${this.#opts.host} is neither loopback nor a wildcard (0.0.0.0, ::): the node's own FFmpeg pulls its streams over loopback and could not reach it`,
      );
    }
    const nmsLog = this.#log.child({ component: "node-media-server" });
    const nmsLogger = require("node-media-server/src/core/logger.js") as NmsLogger;
    // NMS logs prose at debug level to console; keep it, but as our JSON lines and out of the way.
    nmsLogger.log = (message: string, level = "info") => nmsLog.debug(String(message), { nmsLevel: level });

    const { host, port, rtmps, storeDir } = this.#opts;
    const nms = new NodeMediaServer({
      bind: host,
      rtmp: { port },
      ...(rtmps ? { rtmps: { port: rtmps.port, cert: rtmps.cert, key: rtmps.key } } : {}),
      store: { path: storeDir },
      webadmin: { enable: false },
    });
    this.#nms = nms;
    this.#nmsListeners = [
      ["prePublish", (s) => void this.#onPrePublish(s)],
      ["prePlay", (s) => this.#onPrePlay(s)],
    ];
    for (const [event, listener] of this.#nmsListeners) nms.on(event as "prePublish", listener);

    // Every raw connection passes the gate first. RTMP: NMS's connection handler is replaced by one that hands it
    // admitted sockets only. RTMPS: the gate runs on the raw TCP connection before the TLS handshake (which the
    // deadline then covers too); a refused one is destroyed before TLS reads from it.
    const rtmp = nms.rtmpServer;
    if (rtmp.tcpServer) {
      rtmp.tcpServer.removeListener("connection", rtmp.handleRequest);
      rtmp.tcpServer.on("connection", (socket: Socket) => {
        if (this.#gate.admit(socket)) rtmp.handleRequest(socket);
      });
    }
    rtmp.tlsServer?.prependListener("connection", (socket: Socket) => void this.#gate.admit(socket));

    const servers = [nms.rtmpServer.tcpServer, nms.rtmpServer.tlsServer].filter((s): s is Server => s !== undefined);
    const listening = Promise.all(
      servers.map(
        (server) =>
          new Promise<void>((resolve, reject) => {
            server.once("listening", () => resolve());
            server.once("error", reject);
          }),
      ),
    );
    // The listen error fires while nms.run() is still being awaited: mark the promise handled now, or Node
    // treats the rejection as unhandled and crashes the process (the very thing this wrapper prevents).
    listening.catch(() => {});
    // Instead of process.exit(1): the error reaches start()'s caller, later errors are logged.
    nms.rtmpServer.handleListenError = (name: string, p: number) => (error: Error) =>
      this.#log.error("listener error", { listener: name, port: p, error });
    await nms.run();
    try {
      await listening;
    } catch (error) {
      await this.stop();
      throw new Error(`RTMP listener could not start on ${host}:${port}: ${(error as Error).message}`, { cause: error });
    }
    // The store installs SIGINT/SIGTERM handlers that flush and exit; the node's own shutdown must run instead.
    const store = (nms as unknown as { store?: { _removeExitHooks?: () => void } }).store;
    store?._removeExitHooks?.();
    this.#log.info("rtmp listening", { host, port, rtmps: rtmps ? rtmps.port : undefined });
  }

  /**
   * The address one FFmpeg or ffprobe start pulls `streamId` from: over loopback, with a new credential that
   * plays this stream once, from loopback only, and expires unused after MEDIA_RTMP_PULL_TTL_MS. Call it for
   * every start (a restart needs a new one).
   */
  pullUrl(app: string, streamId: string): string {
    const host = pullHost(this.#opts.host) ?? "127.0.0.1";
    const credential = this.#pulls.issue(`/${app}/${streamId}`);
    return `rtmp://${host.includes(":") ? `[${host}]` : host}:${this.#opts.port}/${app}/${streamId}?pull=${credential}`;
  }

  /** Open RTMP/RTMPS connections: all, and those from other hosts (the total cap counts these). */
  connections(): { open: number; remote: number } {
    return this.#gate.stats();
  }

  /** true when the stream currently has a connected, accepted publisher */
  isPublishing(streamId: string): boolean {
    const id = this.#publishers.get(streamId);
    return id !== undefined && this.#accepted.has(id);
  }

  /**
   * Ends the one pull made with `pullUrl` (as pullUrl() gave it): that FFmpeg reads what was already sent to it,
   * then sees the end of its input. Other pulls of the stream are not affected.
   */
  endPull(pullUrl: string): void {
    let url: URL;
    try {
      url = new URL(pullUrl);
    } catch {
      return;
    }
    const credential = url.searchParams.get("pull");
    for (const player of this.#players.get(url.pathname) ?? []) {
      if (credential === null || first(player.streamQuery?.pull) !== credential) continue;
      // NMS would go on writing the live stream to it, and a write after end() makes Node destroy the socket,
      // discarding what is still queued for FFmpeg: leave the broadcast first, then end after the queue.
      player.broadcast?.subscribers?.delete(player.id);
      player.close();
    }
  }

  /** Closes a broadcaster's connection (kick, shutdown). */
  disconnect(sessionId: string): void {
    const accepted = this.#accepted.get(sessionId);
    if (accepted) hangUp(accepted.session);
  }

  /** Bytes received from all publishers so far. */
  bytesIn(): number {
    let live = 0;
    for (const { session } of this.#accepted.values()) live += session.inBytes ?? 0;
    return this.#bytesInDone + live;
  }

  /** Resolves when the RTMP port accepts a TCP connection (for /healthz). */
  ping(timeoutMs = 2000): Promise<void> {
    const host = this.#opts.host === "0.0.0.0" || this.#opts.host === "::" ? "127.0.0.1" : this.#opts.host;
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port: this.#opts.port });
      const timer = setTimeout(() => done(new Error(`RTMP port ${this.#opts.port} did not answer in ${timeoutMs} ms`)), timeoutMs);
      const done = (error?: Error) => {
        clearTimeout(timer);
        socket.destroy();
        if (error) reject(error);
        else resolve();
      };
      socket.once("connect", () => done());
      socket.once("error", (e) => done(new Error(`RTMP port ${this.#opts.port}: ${e.message}`)));
    });
  }

  async stop(): Promise<void> {
    const nms = this.#nms;
    this.#nms = undefined;
    if (!nms) return;
    this.#gate.close();
    const emitter = (require("node-media-server/src/core/context.js") as { eventEmitter: EventEmitter }).eventEmitter;
    for (const [event, listener] of this.#nmsListeners) emitter.off(event, listener);
    this.#nmsListeners = [];
    await nms.stop();
  }

  #refuse(session: NmsSession, refusal: Refusal): void {
    const app = session.streamApp || session.rtmp?.streamApp || "";
    const name = rawName(session);
    // The key may be hostile (control characters, megabytes): log a bounded, JSON-escaped prefix.
    this.#log.warn("publish refused", { reason: refusal.reason, detail: refusal.detail, app, name: name.slice(0, 100), ip: session.ip, sessionId: session.id });
    // Say why before hanging up: an RTMP client shows an error-level onStatus (FFmpeg: "Server error: <detail>").
    try {
      session.rtmp?.sendStatusMessage?.(session.rtmp.streamId ?? 0, "error", "NetStream.Publish.Rejected", `${refusal.reason}: ${refusal.detail}`.slice(0, 300));
    } catch {
      // the connection may already be gone
    }
    hangUp(session);
    // Refused after the async token check: NMS has already made it the stream's publisher. Refused from inside
    // prePublish (early checks): NMS does so right after this returns, so release again once the socket closed.
    releasePublisherSlot(session);
    session.socket?.once("close", () => releasePublisherSlot(session));
    this.emit("refused", { ...refusal, sessionId: session.id, ip: session.ip, app, name: name.slice(0, 100) });
  }

  async #onPrePublish(session: NmsSession): Promise<void> {
    const requestedAt = Date.now();
    const request: PublishRequest = {
      app: session.streamPath ? session.streamApp : (session.rtmp?.streamApp ?? ""),
      name: rawName(session),
      token: first(session.streamQuery?.token),
      // NMS ends sessions with names outside [A-Za-z0-9_-] before it sets streamPath
      rejectedByServer: session.streamPath === "",
    };
    const early = this.#opts.authorize.check(request);
    if (!early.ok) return this.#refuse(session, early);
    const streamId = request.name;
    const current = this.#publishers.get(streamId);
    if (current !== undefined) {
      return this.#refuse(session, { ok: false, reason: "already-live", detail: `stream ${streamId} already has a publisher` });
    }
    // Reserve the key before the (async) token check so two racing publishers cannot both pass.
    this.#publishers.set(streamId, session.id);
    let closed = false;
    const left = new AbortController();
    session.socket?.once("close", () => {
      closed = true;
      left.abort();
      if (this.#publishers.get(streamId) === session.id) this.#publishers.delete(streamId);
      const accepted = this.#accepted.get(session.id);
      if (accepted) {
        this.#accepted.delete(session.id);
        this.#bytesInDone += session.inBytes ?? 0;
        this.#log.info("publisher left", { streamId, sessionId: session.id });
        // NMS keeps players attached when the publisher leaves, so FFmpeg would wait for -rw_timeout. Ending its
        // connection lets it read what is still in flight, then see EOF: the broadcast's last second is kept and
        // the stream ends at once.
        for (const player of this.#players.get(`/${accepted.app}/${streamId}`) ?? []) player.close();
        this.#pulls.revokePath(`/${accepted.app}/${streamId}`);
        this.emit("unpublish", { sessionId: session.id, streamId, app: accepted.app });
      }
    });
    const verified = await this.#opts.authorize.verify(request);
    // Only an authorized publish is weighed against the node's capacity (so refusals count real broadcasters).
    let verdict: EarlyVerdict & { abandon?: () => void };
    try {
      verdict = verified.ok ? ((await this.#opts.admit?.(streamId, left.signal)) ?? verified) : verified;
    } catch (error) {
      this.#log.error("admitting a publish failed", { streamId, error });
      verdict = { ok: false, reason: "node-full", detail: "the node could not take the stream" };
    }
    if (!verdict.ok) {
      if (this.#publishers.get(streamId) === session.id) this.#publishers.delete(streamId);
      return this.#refuse(session, verdict);
    }
    if (!verified.ok) return; // (narrowing: refused above)
    if (closed) return verdict.abandon?.();
    this.#gate.established(session.socket);
    this.#accepted.set(session.id, { session, streamId, app: request.app });
    this.#log.info("publish accepted", { streamId, app: request.app, sessionId: session.id, ip: session.ip, sub: verified.claims.sub });
    this.emit("publish", {
      sessionId: session.id,
      streamId,
      app: request.app,
      ip: session.ip,
      claims: verified.claims,
      requestedAt,
      hints: () => hintsOf(session),
    });
  }

  #onPrePlay(session: NmsSession): void {
    const verdict = this.#pulls.check({ path: session.streamPath, credential: first(session.streamQuery?.pull), remoteAddress: session.socket?.remoteAddress });
    if (verdict.ok) {
      this.#gate.established(session.socket);
      const path = session.streamPath;
      const set = this.#players.get(path) ?? new Set();
      set.add(session);
      this.#players.set(path, set);
      session.socket?.once("close", () => {
        set.delete(session);
        if (set.size === 0 && this.#players.get(path) === set) this.#players.delete(path);
      });
      this.emit("pull", { sessionId: session.id, path });
      return;
    }
    this.#log.warn("play refused", { reason: verdict.reason, detail: verdict.detail, path: session.streamPath.slice(0, 100), ip: session.ip });
    hangUp(session);
    this.emit("connectionRefused", { reason: verdict.reason, address: normalizeAddress(session.socket?.remoteAddress), detail: verdict.detail });
  }
}

/**
 * Where the node's own pulls connect: the listener's loopback address, or 127.0.0.1 for a wildcard listener.
 * undefined when the listener is bound to one address of another interface, which loopback cannot reach.
 */
export function pullHost(listenHost: string): string | undefined {
  if (listenHost === "0.0.0.0" || listenHost === "::" || listenHost === "") return "127.0.0.1";
  if (listenHost === "localhost") return listenHost;
  if (isIP(listenHost) && isLoopback(listenHost)) return listenHost;
  return undefined;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Ends a connection for good. NMS's close() is only socket.end() (a FIN the peer may ignore while NMS keeps
 * reading its packets); destroying the socket stops the reading too, and NMS's own close handling still runs.
 */
export function hangUp(session: Pick<NmsSession, "close" | "socket">): void {
  session.close();
  session.socket?.destroy();
}

/** The NMS internals releasePublisherSlot touches (node-media-server 4.4 BroadcastServer). */
interface NmsBroadcast {
  publisher: unknown;
  _finishPublish?: () => void;
}

/**
 * If `session` (refused by us) holds its stream's publisher slot in NMS, ends that publish now. NMS would keep
 * the slot for 30 s after the disconnect, and a broadcaster from the same address would "resume" it, inheriting
 * the refused sender's cached headers and GOP, which our FFmpeg would then pull.
 */
export function releasePublisherSlot(session: object): void {
  const broadcast = (session as { broadcast?: NmsBroadcast }).broadcast;
  if (broadcast && broadcast.publisher === session) broadcast._finishPublish?.();
}

/**
 * Reads what onMetaData set on the NMS session; undefined until the metadata arrived. Audio channels: NMS reads
 * them from the `stereo` flag alone (a missing flag reads as mono), so only "stereo" is believed; the real count
 * comes from the AAC sequence header once it arrived (aac-config.ts), and otherwise it is unknown.
 */
export function hintsOf(session: Pick<NmsSession, "videoCodec" | "videoWidth" | "videoHeight" | "videoFramerate" | "audioCodec" | "audioChannels" | "audioSamplerate" | "broadcast">): SourceHints | undefined {
  // NMS initialises these to 0 and overwrites them (possibly with undefined) when metadata arrives.
  const seen = session.videoCodec !== 0 || session.audioCodec !== 0 || session.videoWidth !== 0;
  if (!seen) return undefined;
  const hints: SourceHints = {};
  if (session.videoWidth && session.videoHeight) {
    hints.video = { width: session.videoWidth, height: session.videoHeight, fps: session.videoFramerate || undefined, codecId: session.videoCodec };
  }
  if (session.audioCodec !== undefined && session.audioCodec !== 0) {
    const fromConfig = session.audioCodec === FLV_AUDIO_AAC ? aacChannelsOfFlvTag(session.broadcast?.flvAudioHeader) : undefined;
    const channels = fromConfig ?? (session.audioChannels === 2 ? 2 : undefined);
    hints.audio = { codecId: session.audioCodec, channels, sampleRate: session.audioSamplerate, channelsFromConfig: fromConfig !== undefined };
  }
  return hints;
}
