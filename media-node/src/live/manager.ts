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
import { type LiveDeps, LiveSession } from "./session.ts";

export interface LiveManagerOptions extends Omit<LiveDeps, "describeSource"> {
  /** wait this long for the publisher's RTMP metadata before probing with ffprobe */
  metadataWaitMs: number;
  ffprobePath: string;
  /** live streams encoded at once; a new one beyond it is refused (a broadcaster resuming its stream is not) */
  maxLiveStreams: number;
}

export interface LiveManagerEvents {
  /** a new broadcast began (not emitted for a resume) */
  session: [LiveSession];
}

export class LiveManager extends EventEmitter<LiveManagerEvents> {
  readonly #opts: LiveManagerOptions;
  readonly #log: Logger;
  readonly #sessions = new Map<string, LiveSession>();
  #closing = false;

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

  /**
   * Can the node take a publish for `streamId`? A broadcaster coming back to its stream (within the grace window)
   * always can; a new stream only while fewer than MEDIA_MAX_LIVE_STREAMS are encoding (ending ones still count:
   * their FFmpeg may still be encoding what it received).
   */
  admit(streamId: string): EarlyVerdict {
    if (this.#closing) return { ok: false, reason: "node-full", detail: "the node is shutting down" };
    const existing = this.#sessions.get(streamId);
    if (existing && (existing.state === "waiting" || existing.state === "starting" || existing.state === "live")) return { ok: true };
    const max = this.#opts.maxLiveStreams;
    if (this.#sessions.size >= max) return { ok: false, reason: "node-full", detail: `this node already encodes ${this.#sessions.size} live streams (at most ${max}); try again later or another node` };
    return { ok: true };
  }

  onPublish(publish: AuthorizedPublish): void {
    if (this.#closing) return this.#opts.ingest.disconnect(publish.sessionId);
    const existing = this.#sessions.get(publish.streamId);
    if (existing && (existing.state === "waiting" || existing.state === "starting" || existing.state === "live")) {
      void existing.resume(publish.sessionId).catch((error: unknown) => this.#log.error("resume failed", { streamId: publish.streamId, error }));
      return;
    }
    const session = new LiveSession(
      { streamId: publish.streamId, app: publish.app, broadcastId: newId("brd"), claims: publish.claims, publisherSessionId: publish.sessionId, requestedAt: publish.requestedAt },
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
