// One Durable Object per user (named by the user id): the user's videos. It creates them (enforcing the
// concurrent-upload limit in the same transaction as the insert), lists and deletes them, and applies the media
// side's events to them exactly once (AppliedLedger: the event id is recorded in the same transaction as the
// change), so a redelivered media.ready changes nothing. It carries the outbox that hands finished uploads to
// the media nodes: a video becomes `queued` in the same transaction as its media.uploaded is written there.

import { DurableObject } from "cloudflare:workers";
import { type Envelope, makeEvent } from "../../../shared/envelope.ts";
import type { Env } from "../env.ts";
import { AppliedLedger, claimedId, type EventApplyOutcome } from "../ledger/applied-ledger.ts";
import { carriedOutbox } from "../outbox/carrier.ts";
import type { DeadLetter, Outbox, OutboxStatus, OutboxView } from "../outbox/outbox.ts";
import { edgeSettings } from "../settings.ts";
import { applyMediaEvent, outputPrefixOf, policyOf, type VideoPolicy, type VideoRecord } from "./records.ts";

export type CreateResult = { ok: true; video: VideoRecord } | { ok: false; code: "too_many_uploads" | "exists"; message: string };

export interface VideoPage {
  videos: VideoRecord[];
  /** pass as `before` for the next page; absent on the last page */
  nextBefore?: number;
}

/** What playback needs to know of a video, cacheable for a moment per isolate (as a stream's PlaybackState). */
export interface VideoPlaybackState {
  exists: boolean;
  policy?: VideoPolicy;
  /** playable (first rendition stored) or ready */
  playable: boolean;
  /** where its outputs are stored: the folder of its master playlist */
  prefix?: string;
}

/** The stored upload a video's media.uploaded names. */
export interface UploadedSource {
  bytes: number;
  key: string;
  contentType: string;
}

/** Event id of an upload's media.uploaded: one per video, so a repeated announcement is the same job. */
export function uploadedEventId(videoId: string): string {
  return `upl_${videoId}`;
}

export class VideoLibrary extends DurableObject<Env> implements OutboxView {
  private readonly sql: SqlStorage;
  private readonly ledger: AppliedLedger;
  /** media.uploaded jobs for the media nodes, written with the status change they report (outbox/outbox.ts) */
  readonly outbox: Outbox;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS videos (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      status TEXT NOT NULL,
      upload_expires_at INTEGER,
      data TEXT NOT NULL
    )`);
    this.ledger = new AppliedLedger(ctx.storage);
    // One job per finished upload and nothing gathers behind it: delivered right away.
    this.outbox = carriedOutbox(ctx.storage, edgeSettings(env), 0, () => `videos ${ctx.id.toString()}`);
    void ctx.blockConcurrencyWhile(() => this.outbox.resume());
  }

  private row(id: string): VideoRecord | null {
    const r = this.sql.exec<{ data: string }>("SELECT data FROM videos WHERE id = ?", id).toArray()[0];
    return r ? (JSON.parse(r.data) as VideoRecord) : null;
  }

  private write(v: VideoRecord): void {
    this.sql.exec("UPDATE videos SET status = ?, upload_expires_at = ?, data = ? WHERE id = ?", v.status, v.uploadExpiresAt, JSON.stringify(v), v.id);
  }

  private insert(v: VideoRecord): void {
    this.sql.exec("INSERT INTO videos (id, status, upload_expires_at, data) VALUES (?, ?, ?, ?)", v.id, v.status, v.uploadExpiresAt, JSON.stringify(v));
  }

  /** A new video in `uploading`, unless the user already has `maxConcurrent` unexpired uploads in progress. */
  async create(video: VideoRecord, maxConcurrent: number): Promise<CreateResult> {
    return this.ctx.storage.transactionSync((): CreateResult => {
      if (this.row(video.id)) return { ok: false, code: "exists", message: `video ${video.id} exists` };
      const open = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM videos WHERE status = 'uploading' AND upload_expires_at > ?", Date.now()).one().n;
      if (open >= maxConcurrent) return { ok: false, code: "too_many_uploads", message: `${open} uploads are in progress; at most ${maxConcurrent} at once (finish or delete one)` };
      this.insert(video);
      return { ok: true, video };
    });
  }

  async get(id: string): Promise<VideoRecord | null> {
    return this.row(id);
  }

  /** Newest first. */
  async list(opts: { before?: number | undefined; limit: number }): Promise<VideoPage> {
    const rows = this.sql
      .exec<{ seq: number; data: string }>("SELECT seq, data FROM videos WHERE seq < ? ORDER BY seq DESC LIMIT ?", opts.before ?? Number.MAX_SAFE_INTEGER, opts.limit + 1)
      .toArray();
    const page = rows.slice(0, opts.limit);
    const more = rows.length > opts.limit;
    return { videos: page.map((r) => JSON.parse(r.data) as VideoRecord), ...(more && page.length ? { nextBefore: page.at(-1)!.seq } : {}) };
  }

  /**
   * The upload is complete and stored: the video waits for a media node, and its media.uploaded goes into the
   * outbox in the same transaction. Idempotent: only an `uploading` video moves, so the job is written once.
   */
  async uploaded(id: string, source: UploadedSource): Promise<VideoRecord | null> {
    return this.ctx.storage.transactionSync(() => {
      const v = this.row(id);
      if (!v || v.status !== "uploading") return v;
      const next: VideoRecord = { ...v, status: "queued", size: source.bytes, uploadExpiresAt: null, updatedAt: Date.now() };
      this.write(next);
      const event = makeEvent(
        "media.uploaded",
        { mediaId: id, ownerId: v.ownerId, key: source.key, size: source.bytes, ...(source.contentType ? { contentType: source.contentType.slice(0, 255) } : {}) },
        { source: "edge", subject: `media/${id}`, id: uploadedEventId(id) },
      );
      this.outbox.add([event]);
      return next;
    });
  }

  /** Title and playback policy; null when there is no such video. */
  async update(id: string, change: { title?: string; playbackPolicy?: VideoPolicy }): Promise<VideoRecord | null> {
    const v = this.row(id);
    if (!v) return null;
    const next: VideoRecord = { ...v, updatedAt: Date.now() };
    if (change.title !== undefined) next.title = change.title;
    if (change.playbackPolicy !== undefined) next.playbackPolicy = change.playbackPolicy;
    this.write(next);
    return next;
  }

  /** Whether /play may serve this video, under which policy, and from which folder. */
  async playbackState(id: string): Promise<VideoPlaybackState> {
    const v = this.row(id);
    if (!v) return { exists: false, playable: false };
    const prefix = outputPrefixOf(v);
    return { exists: true, policy: policyOf(v), playable: (v.status === "playable" || v.status === "ready") && prefix !== undefined, ...(prefix ? { prefix } : {}) };
  }

  /** The upload expired before it was complete. Idempotent. */
  async expired(id: string): Promise<void> {
    const v = this.row(id);
    if (!v || v.status !== "uploading") return;
    this.write({ ...v, status: "failed", uploadExpiresAt: null, failure: { stage: "upload", reason: "the upload expired before it was complete" }, updatedAt: Date.now() });
  }

  /** Forgets the video; returns what it was (null if unknown). */
  async remove(id: string): Promise<VideoRecord | null> {
    const v = this.row(id);
    if (v) this.sql.exec("DELETE FROM videos WHERE id = ?", id);
    return v;
  }

  /** media.progress / playable / ready / failed, each applied once by event id, in one transaction. */
  async applyEvents(events: Envelope[]): Promise<EventApplyOutcome[]> {
    const now = Date.now();
    const ids = events.map((e, i) => claimedId(e, i));
    const { fresh } = this.ledger.claimMany(ids, (fresh) => {
      events.forEach((event, i) => {
        if (!fresh[i]) return;
        const id = (event.data as { mediaId?: string }).mediaId;
        if (!id) return;
        const change = applyMediaEvent(this.row(id), event, now);
        if (change.kind === "update") this.write(change.record);
        else if (change.kind === "create") this.insert(change.record);
      });
    });
    return ids.map((id, i) => ({ id, applied: fresh[i]! }));
  }

  // ---- outbox (alarm and operator view) --------------------------------------------------------------

  override async alarm(): Promise<void> {
    await this.outbox.deliver();
  }

  async outboxStatus(): Promise<OutboxStatus> {
    return this.outbox.status();
  }

  async outboxPending(limit?: number): Promise<string[]> {
    return this.outbox.pending(limit);
  }

  async outboxDeadLetters(limit?: number): Promise<DeadLetter[]> {
    return this.outbox.deadLetters(limit);
  }

  async requeueDeadLetters(): Promise<{ requeued: number }> {
    return this.outbox.requeueDeadLetters();
  }
}
