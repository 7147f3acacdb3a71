// One Durable Object per user (named by the user id): the user's videos. It creates them (enforcing the
// concurrent-upload limit in the same transaction as the insert), lists and deletes them, and applies the media
// side's events to them exactly once (AppliedLedger: the event id is recorded in the same transaction as the
// change), so a redelivered media.ready changes nothing.

import { DurableObject } from "cloudflare:workers";
import type { Envelope } from "../../../shared/envelope.ts";
import type { Env } from "../env.ts";
import { AppliedLedger, claimedId, type EventApplyOutcome } from "../events/applied-ledger.ts";
import { applyMediaEvent, type VideoRecord } from "./records.ts";

export type CreateResult = { ok: true; video: VideoRecord } | { ok: false; code: "too_many_uploads" | "exists"; message: string };

export interface VideoPage {
  videos: VideoRecord[];
  /** pass as `before` for the next page; absent on the last page */
  nextBefore?: number;
}

export class VideoLibrary extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly ledger: AppliedLedger;

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

  /** The upload is complete and stored: the video waits for a media node. Idempotent. */
  async uploaded(id: string, bytes: number): Promise<VideoRecord | null> {
    const v = this.row(id);
    if (!v || v.status !== "uploading") return v;
    const next: VideoRecord = { ...v, status: "queued", size: bytes, uploadExpiresAt: null, updatedAt: Date.now() };
    this.write(next);
    return next;
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
}
