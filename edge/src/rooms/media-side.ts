// Chat messages and presence joins/leaves go to the media side (moderation and other consumers) as
// `chat.message` / `presence.update` events through the edge outbox. Off the hot path by design: events are
// handed over in batches every ROOM_OUTBOX_FLUSH_MS with waitUntil, and a failing outbox is logged, never felt
// by chat.
//
// At least once: each event is written to the room's own SQLite when it is queued, in the same synchronous turn
// as the chat message or presence change it reports (one implicit transaction), and deleted only once the outbox
// has stored it. A failed handoff keeps the rows and retries with backoff; a room that is evicted or redeployed
// with rows waiting hands them over when it next wakes. Storage is bounded: past MAX_PENDING rows the oldest are
// dropped (counted in the logs), so a long outbox outage cannot grow a room without limit.
import type { Envelope } from "../../../shared/envelope.ts";
import type { Env } from "../env.ts";
import { sendToMediaSide } from "../outbox/send.ts";

export const MAX_PENDING = 5000;
/** Rows handed over per flush (the outbox stores them in one insert). */
const HANDOFF_MAX = 500;
const RETRY_MAX_MS = 30_000;

export class MediaSideForwarder {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private flushing = false;
  private failures = 0;
  private dropped = 0;
  private readonly env: Env;
  private readonly ctx: DurableObjectState;
  private readonly sql: SqlStorage;
  private readonly flushMs: number;

  constructor(env: Env, ctx: DurableObjectState, flushMs: number) {
    this.env = env;
    this.ctx = ctx;
    this.sql = ctx.storage.sql;
    this.flushMs = flushMs;
    this.sql.exec("CREATE TABLE IF NOT EXISTS media_side_pending (seq INTEGER PRIMARY KEY AUTOINCREMENT, shard TEXT NOT NULL, body TEXT NOT NULL)");
    // Events left by an earlier life of this object (evicted, redeployed, or the outbox was down) go out now.
    if (this.pendingCount() > 0) this.schedule(this.flushMs);
  }

  /** Stores the event for handover to the room's outbox shard (`shardKey`, the room id). Synchronous. */
  queue(event: Envelope, shardKey: string): void {
    const { seq } = this.sql
      .exec<{ seq: number }>("INSERT INTO media_side_pending (shard, body) VALUES (?, ?) RETURNING seq", shardKey, JSON.stringify(event))
      .one();
    if (seq % 100 === 0) this.bound();
    this.schedule(this.flushMs);
  }

  pendingCount(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM media_side_pending").one().n;
  }

  private bound(): void {
    const over = this.pendingCount() - MAX_PENDING;
    if (over <= 0) return;
    this.sql.exec("DELETE FROM media_side_pending WHERE seq IN (SELECT seq FROM media_side_pending ORDER BY seq LIMIT ?)", over);
    this.dropped += over;
  }

  private schedule(delayMs: number): void {
    this.timer ??= setTimeout(() => {
      this.timer = null;
      this.flush();
    }, delayMs);
  }

  flush(): void {
    // One handoff at a time, in order; whatever arrives meanwhile goes with the next.
    if (this.flushing) return this.schedule(this.flushMs);
    const rows = this.sql
      .exec<{ seq: number; shard: string; body: string }>("SELECT seq, shard, body FROM media_side_pending ORDER BY seq LIMIT ?", HANDOFF_MAX)
      .toArray();
    if (rows.length === 0) return;
    // One shard per handoff (a room only ever writes its own name; this keeps the rule explicit).
    const shard = rows[0]!.shard;
    const batch = rows.filter((r) => r.shard === shard);
    const lastSeq = batch[batch.length - 1]!.seq;
    this.flushing = true;
    const handoff = (async () => {
      try {
        await sendToMediaSide(this.env, batch.map((r) => JSON.parse(r.body) as Envelope), shard);
        this.sql.exec("DELETE FROM media_side_pending WHERE shard = ? AND seq <= ?", shard, lastSeq);
        this.failures = 0;
        if (this.pendingCount() > 0) this.schedule(this.flushMs);
      } catch (error) {
        // Log the first failure and then every 100th, so a missing outbox does not flood the logs.
        if (this.failures++ % 100 === 0) {
          console.warn(`room outbox handoff failed (failure #${this.failures}, ${batch.length} event(s) kept, ${this.dropped} dropped over the bound):`, error instanceof Error ? error.message : error);
        }
        this.schedule(Math.min(RETRY_MAX_MS, this.flushMs * 2 ** Math.min(this.failures, 12)));
      } finally {
        this.flushing = false;
      }
    })();
    this.ctx.waitUntil(handoff);
  }
}
