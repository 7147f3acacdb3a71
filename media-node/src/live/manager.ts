// Routes the ingest's publish/unpublish to live sessions: one session per stream key at a time. A publish for a
// key whose session is waiting out its grace window resumes that session (same playlists, a discontinuity);
// otherwise a new broadcast (new broadcast id, new key prefix) begins.

import { EventEmitter } from "node:events";
import { newId } from "../../../shared/ids.ts";
import type { EarlyVerdict } from "../ingest/authorize.ts";
import { type AuthorizedPublish, FLV_AUDIO_AAC, type SourceHints } from "../ingest/rtmp-server.ts";
import type { Logger } from "../log.ts";
import type { SourceInfo } from "../transcode/ladder.ts";
import { probeSource, sourceFromHints } from "../transcode/probe.ts";
import { type Continuation, type LiveDeps, LiveSession } from "./session.ts";
import type { BroadcastRegistry } from "../fleet/broadcasts.ts";
import type { Lease, StreamLeases } from "../fleet/leases.ts";
import { endOrphanBroadcast, loadBroadcast } from "../fleet/orphans.ts";
import type { ObjectStore } from "../storage/types.ts";

/** What makes the node one of a fleet: stream leases, the broadcasts' shared state, and where segments are. */
export interface LiveFleet {
  leases: StreamLeases;
  broadcasts: BroadcastRegistry;
  store: ObjectStore;
  /** segments per journal page (hls/journal.ts) */
  journalPage: number;
}

export interface LiveManagerOptions extends Omit<LiveDeps, "describeSource"> {
  /** wait this long for the publisher's RTMP metadata before probing with ffprobe */
  metadataWaitMs: number;
  ffprobePath: string;
  /** live streams encoded at once; a new one beyond it is refused (a broadcaster resuming its stream is not) */
  maxLiveStreams: number;
  /** leases and shared broadcast state (absent: the node works alone, as before fleets) */
  fleet?: LiveFleet | undefined;
}

/** An admit verdict; `abandon` undoes what an accepted one took (the lease) if the publish never starts. */
export type AdmitVerdict = EarlyVerdict & { abandon?: () => void };

export interface LiveManagerEvents {
  /** a new broadcast began (not emitted for a resume) */
  session: [LiveSession];
}

export class LiveManager extends EventEmitter<LiveManagerEvents> {
  readonly #opts: LiveManagerOptions;
  readonly #log: Logger;
  readonly #sessions = new Map<string, LiveSession>();
  /** publishes admitted (lease taken, broadcast state read) whose session is not created yet */
  readonly #pending = new Map<string, { lease: Lease; continueFrom: Continuation | undefined }>();
  #closing = false;
  #draining = false;
  /** unfinished broadcasts seen without a lease, and since when (the orphan sweep) */
  readonly #orphanSeen = new Map<string, number>();
  #sweepTimer: NodeJS.Timeout | undefined;
  #sweeping: Promise<void> | undefined;

  constructor(opts: LiveManagerOptions) {
    super();
    this.#opts = opts;
    this.#log = opts.log.child({ component: "live-manager" });
  }

  get(streamId: string): LiveSession | undefined {
    return this.#sessions.get(streamId);
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** the live streams this node carries (for its heartbeat) */
  streamIds(): string[] {
    return [...this.#sessions].filter(([, s]) => s.state !== "ended").map(([id]) => id);
  }

  get draining(): boolean {
    return this.#draining;
  }

  #capacity(streamId: string): EarlyVerdict {
    if (this.#closing) return { ok: false, reason: "node-full", detail: "the node is shutting down" };
    const existing = this.#sessions.get(streamId);
    if (existing && (existing.state === "waiting" || existing.state === "starting" || existing.state === "live")) return { ok: true };
    if (this.#draining) return { ok: false, reason: "node-draining", detail: "this node is draining for maintenance and takes no new streams; publish to another node" };
    const max = this.#opts.maxLiveStreams;
    const taken = this.#sessions.size + this.#pending.size;
    if (taken >= max) return { ok: false, reason: "node-full", detail: `this node already encodes ${taken} live streams (at most ${max}); try again later or another node` };
    return { ok: true };
  }

  /**
   * Can the node take a publish for `streamId`? A broadcaster coming back to its stream here (within the grace
   * window) always can; a new stream only while the node is not draining and fewer than MEDIA_MAX_LIVE_STREAMS are
   * encoding (ending ones still count: their FFmpeg may still be encoding what it received). In a fleet it must
   * also hold the stream's lease: a stream live on another node is refused (`owned-elsewhere`) once that node
   * shows it is alive, and a stream whose node died is taken once NATS shows that node gone (or its lease
   * expired); a broadcast that node had not ended is then continued here (or ended first, when its broadcaster
   * comes back too late). This node's own previous process counts as gone: a restarted node continues its own.
   */
  async admit(streamId: string, signal?: AbortSignal): Promise<AdmitVerdict> {
    const local = this.#capacity(streamId);
    const existing = this.#sessions.get(streamId);
    const fleet = this.#opts.fleet;
    if (!local.ok || !fleet || (existing && existing.state !== "ending" && existing.state !== "ended")) return local;
    const got = await fleet.leases.acquire(streamId, signal ? { signal } : {});
    if (!got.ok) return { ok: false, reason: "owned-elsewhere", detail: got.detail };
    const lease = got.lease;
    // The wait may have let others in: the capacity again, now counting this one as pending.
    const again = this.#capacity(streamId);
    if (!again.ok || signal?.aborted) {
      void lease.release();
      return again.ok ? { ok: false, reason: "node-full", detail: "the publisher left while its stream's lease was awaited" } : again;
    }
    this.#pending.set(streamId, { lease, continueFrom: undefined });
    try {
      const continueFrom = await this.#continuation(streamId);
      const p = this.#pending.get(streamId);
      if (p && p.lease === lease) p.continueFrom = continueFrom;
    } catch (error) {
      this.#log.warn("could not read the stream's unfinished broadcast; starting a new one", { streamId, error });
    }
    return {
      ok: true,
      abandon: () => {
        if (this.#pending.get(streamId)?.lease === lease) this.#pending.delete(streamId);
        void lease.release();
      },
    };
  }

  /**
   * The stream's unfinished broadcast, if another node started it and its broadcaster is back in time: it goes on
   * here. One whose broadcaster comes back later than the grace window (counted from the last time its node stored
   * something of it) is ended first, as its own node would have, and a new broadcast begins.
   */
  async #continuation(streamId: string): Promise<Continuation | undefined> {
    const fleet = this.#opts.fleet!;
    let state;
    try {
      state = await fleet.broadcasts.get(streamId);
    } catch (error) {
      this.#log.warn("NATS unreachable: cannot tell whether the stream has a broadcast to continue; starting a new one", { streamId, error: (error as Error).message });
      return undefined;
    }
    if (!state) return undefined;
    // This node's own session of that broadcast is still ending (its grace window passed): it writes the end of
    // that broadcast, so the broadcaster back now starts a new one, as on a node alone.
    if (this.#sessions.get(streamId)?.broadcastId === state.broadcastId) return undefined;
    const loaded = await loadBroadcast(fleet.store, state);
    if (loaded.missing > 0) this.#log.error("stored broadcast is missing journal pages; its recording has a hole", { streamId, missing: loaded.missing });
    const s = this.#opts.settings;
    const windowMs = (s.reconnectGraceS + 2 * s.segmentS + 5) * 1000 + fleet.leases.ttlMs;
    if (Date.now() - loaded.lastActiveMs > windowMs) {
      this.#log.info("the stream's previous broadcast stopped too long ago to continue; ending it and starting a new one", { streamId, broadcastId: state.broadcastId, idleS: Math.round((Date.now() - loaded.lastActiveMs) / 1000) });
      await this.#endOrphan(state, loaded);
      return undefined;
    }
    return { state, segments: loaded.segments };
  }

  async #endOrphan(state: NonNullable<Awaited<ReturnType<BroadcastRegistry["get"]>>>, loaded?: Awaited<ReturnType<typeof loadBroadcast>>, reason: "publisher-left" | "node-shutdown" = "publisher-left"): Promise<void> {
    const fleet = this.#opts.fleet!;
    await endOrphanBroadcast(state, { store: fleet.store, uploader: this.#opts.uploader, events: this.#opts.events, publicUrl: this.#opts.publicUrl, nodeId: this.#opts.settings.nodeId, log: this.#log }, loaded, reason);
    await fleet.broadcasts.delete(state.streamId, state.broadcastId);
  }

  /**
   * After a hand-over: the broadcaster's reconnect should reach another node within the grace window, which then
   * holds the stream's lease. If none does (a fleet of one, or the broadcaster gave up), the broadcast is ended
   * here, as the node would have without a fleet. Bounded by `deadline`.
   */
  async #awaitTakeOver(streamId: string, broadcastId: string, deadline: number): Promise<void> {
    const fleet = this.#opts.fleet!;
    const me = this.#opts.settings.nodeId;
    const until = Math.min(deadline, Date.now() + this.#opts.settings.reconnectGraceS * 1000);
    while (Date.now() < until) {
      const holder = await fleet.leases.holder(streamId).catch(() => undefined);
      if (holder && holder.nodeId !== me) {
        this.#log.info("handed-over broadcast continued by another node", { streamId, node: holder.nodeId });
        return;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const got = await fleet.leases.acquire(streamId, { waitMs: 0 });
    if (!got.ok) return; // taken at the last moment
    try {
      const state = await fleet.broadcasts.get(streamId);
      if (state?.broadcastId === broadcastId) await this.#endOrphan(state, undefined, "node-shutdown");
    } catch (error) {
      this.#log.error("a handed-over broadcast nobody took over could not be ended; the next node's orphan sweep ends it", { streamId, error });
    } finally {
      await got.lease.release();
    }
  }

  onPublish(publish: AuthorizedPublish): void {
    const pending = this.#pending.get(publish.streamId);
    this.#pending.delete(publish.streamId);
    if (this.#closing) {
      void pending?.lease.release();
      return this.#opts.ingest.disconnect(publish.sessionId);
    }
    const existing = this.#sessions.get(publish.streamId);
    if (existing && (existing.state === "waiting" || existing.state === "starting" || existing.state === "live")) {
      void existing.resume(publish.sessionId).catch((error: unknown) => this.#log.error("resume failed", { streamId: publish.streamId, error }));
      return;
    }
    const fleet = this.#opts.fleet;
    const session = new LiveSession(
      {
        streamId: publish.streamId,
        app: publish.app,
        broadcastId: newId("brd"),
        claims: publish.claims,
        publisherSessionId: publish.sessionId,
        requestedAt: publish.requestedAt,
        fleet: fleet && pending ? { lease: pending.lease, broadcasts: fleet.broadcasts, journalPage: fleet.journalPage } : undefined,
        continueFrom: pending?.continueFrom,
      },
      { ...this.#opts, describeSource: () => this.#describe(publish) },
    );
    this.#sessions.set(publish.streamId, session);
    session.once("ended", () => {
      if (this.#sessions.get(publish.streamId) === session) this.#sessions.delete(publish.streamId);
    });
    this.emit("session", session);
    void session.start().catch((error: unknown) => {
      this.#log.error("session failed to start", { streamId: publish.streamId, error });
      void session.end("transcoder-failed");
    });
  }

  onUnpublish(event: { sessionId: string; streamId: string }): void {
    this.#sessions.get(event.streamId)?.publisherLeft(event.sessionId);
  }

  /**
   * Draining for maintenance: no new streams from now on (a broadcaster coming back to its own stream here still
   * may, within the grace window); streams still live after `handOffAfterMs` are handed over (their broadcasters'
   * reconnects continue them on other nodes). Resolves once no stream is left, or after `timeoutMs`.
   */
  async drain(opts: { handOffAfterMs: number; timeoutMs: number }): Promise<{ handedOff: number; inTime: boolean }> {
    this.#draining = true;
    const deadline = Date.now() + opts.timeoutMs;
    const allEnded = () => Promise.all([...this.#sessions.values()].map((s) => new Promise<void>((r) => (s.state === "ended" ? r() : s.once("ended", () => r()))))).then(() => true);
    const timer = (ms: number) => new Promise<false>((r) => setTimeout(() => r(false), Math.max(0, ms)).unref());
    if (this.#sessions.size > 0) {
      this.#log.info("draining: no new streams; live ones are handed over", { streams: this.#sessions.size, handOffAfterS: opts.handOffAfterMs / 1000 });
      await Promise.race([allEnded(), timer(opts.handOffAfterMs)]);
    }
    const live = [...this.#sessions.values()].filter((s) => s.state !== "ending" && s.state !== "ended");
    const handOffs = live.map(async (s) => {
      if (!this.#opts.fleet) return s.end("node-shutdown");
      await s.handOff();
      await this.#awaitTakeOver(s.streamId, s.broadcastId, deadline);
    });
    const inTime = await Promise.race([Promise.all(handOffs).then(allEnded), timer(deadline - Date.now())]);
    return { handedOff: live.length, inTime };
  }

  /**
   * Looks for broadcasts whose node died and whose broadcaster is not back (no lease for longer than the grace
   * window) every `intervalMs`, and ends them. Any node may find one; the lease makes sure one ends it.
   */
  startOrphanSweep(intervalMs: number): void {
    if (!this.#opts.fleet || this.#sweepTimer) return;
    this.#sweepTimer = setInterval(() => {
      this.#sweeping ??= this.#sweep().finally(() => (this.#sweeping = undefined));
    }, intervalMs);
    this.#sweepTimer.unref();
  }

  async #sweep(): Promise<void> {
    const fleet = this.#opts.fleet!;
    let ids: string[];
    try {
      ids = await fleet.broadcasts.streams();
    } catch {
      return; // NATS away: next time
    }
    const now = Date.now();
    const graceMs = this.#opts.settings.reconnectGraceS * 1000;
    for (const seen of [...this.#orphanSeen.keys()]) if (!ids.includes(seen)) this.#orphanSeen.delete(seen);
    for (const streamId of ids) {
      if (this.#closing) return;
      if (this.#sessions.has(streamId) || this.#pending.has(streamId)) {
        this.#orphanSeen.delete(streamId);
        continue;
      }
      try {
        if (await fleet.leases.holder(streamId)) {
          this.#orphanSeen.delete(streamId);
          continue;
        }
        const since = this.#orphanSeen.get(streamId) ?? now;
        this.#orphanSeen.set(streamId, since);
        if (now - since < graceMs) continue;
        const got = await fleet.leases.acquire(streamId, { waitMs: 0 });
        if (!got.ok) continue;
        try {
          const state = await fleet.broadcasts.get(streamId);
          if (state && !this.#sessions.has(streamId)) await this.#endOrphan(state);
        } finally {
          this.#orphanSeen.delete(streamId);
          await got.lease.release();
        }
      } catch (error) {
        this.#log.warn("orphan sweep: could not check a broadcast", { streamId, error: (error as Error).message });
      }
    }
  }

  /** Ends a stream now (moderation): the broadcaster is disconnected and the stream ends with reason `kicked`. */
  async kick(streamId: string): Promise<boolean> {
    const session = this.#sessions.get(streamId);
    if (!session || session.state === "ending" || session.state === "ended") return false;
    const ended = session.end("kicked");
    this.#opts.ingest.disconnect(session.publisherSessionId);
    await ended;
    return true;
  }

  /** RTMP metadata when the broadcaster sends it (OBS and FFmpeg do), else ffprobe on the pull. */
  async #describe(publish: AuthorizedPublish): Promise<SourceInfo> {
    const deadline = Date.now() + this.#opts.metadataWaitMs;
    let hints: SourceHints | undefined;
    // The metadata comes first, the AAC sequence header (the real channel count) right after it: wait for both.
    const complete = (h: SourceHints | undefined) => h !== undefined && (h.audio?.codecId !== FLV_AUDIO_AAC || h.audio.channelsFromConfig);
    while (!complete((hints = publish.hints())) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    if (hints && (hints.video || hints.audio)) return sourceFromHints(hints);
    this.#log.info("no RTMP metadata; probing the source", { streamId: publish.streamId });
    return probeSource(this.#opts.ingest.pullUrl(publish.app, publish.streamId), { ffprobePath: this.#opts.ffprobePath, rwTimeoutS: this.#opts.settings.rwTimeoutS });
  }

  /**
   * Ends every stream (node-shutdown): FFmpeg stopped, ENDLIST written where storage allows within `timeoutMs`.
   * `inTime` says whether every stream finished by then; `ended` settles once every session's end is over, which
   * after a timeout may be later (e.g. once the uploader is closed and refuses what is left): await it before the
   * bus stops, or stream.ended / media.ready would meet a stopped outbox.
   */
  async shutdown(timeoutMs = 10_000): Promise<{ inTime: boolean; ended: Promise<void> }> {
    this.#closing = true;
    clearInterval(this.#sweepTimer);
    await this.#sweeping;
    for (const { lease } of this.#pending.values()) void lease.release();
    this.#pending.clear();
    const all = [...this.#sessions.values()].map((s) => s.end("node-shutdown"));
    const ended = Promise.allSettled(all).then(() => {});
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
    const result = await Promise.race([ended, timedOut]);
    clearTimeout(timer);
    if (result === "timeout") this.#log.warn("shutdown: streams did not finish storing in time; local files are kept", { timeoutMs });
    return { inTime: result !== "timeout", ended };
  }
}
