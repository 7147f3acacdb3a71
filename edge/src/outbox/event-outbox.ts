// Edge -> media side outbox: a Durable Object that keeps events in its SQLite storage until the HTTP->NATS
// bridge has stored them in JetStream.
//
// Why an object per shard and alarms: a room must be able to hand off an event in one cheap local call and go
// on, whatever state the media side is in. The outbox stores first (one transaction per batch), then delivers
// from an alarm, in order, up to OUTBOX_BATCH_MAX events per POST in the batch format (shared/batch.ts: one
// signature and one round trip for many events, since the cost per request dominates), so the bridge sees each
// shard's events in the order they were handed over. Each event is settled by its own result: stored ->
// forgotten, rejected (permanent) -> a dead-letter table with the reason, failed (temporary) -> kept at the head
// of the queue. A failed request or a failed event stops the shard and reschedules the alarm with exponential
// backoff; a media side that is down for an hour receives everything when it returns.
//
// Single POSTs remain for two reasons: OUTBOX_BATCH_MAX=1 (a bridge that does not take batches), and a batch
// refused AS A WHOLE with a permanent 4xx — that verdict is about the request (an older bridge answering 400 to
// the batch body, a lower size limit), not about any one event, so instead of dead-lettering up to 100 good
// events the outbox sends that batch's events one by one, where each gets a verdict of its own.

import { DurableObject } from "cloudflare:workers";
import { utf8 } from "../../../shared/encoding.ts";
import { type Envelope, MAX_EVENT_BYTES, parseEvent } from "../../../shared/envelope.ts";
import type { Env } from "../env.ts";
import { AppliedLedger } from "../events/applied-ledger.ts";
import { retryDelayMs } from "./backoff.ts";
import { type OutboxConfig, outboxConfig, type OutboxVars } from "./config.ts";
import { deliverBatch, deliverEvent, type DeliveryTarget, type EventDelivery } from "./deliver.ts";
import { MAX_BATCH_BYTES } from "../../../shared/batch.ts";

/** Events read per query inside one alarm run. */
const READ_BATCH = 64;
/** An alarm run hands over to a fresh alarm after this long, so one run never nears the CPU/wall limits. */
const ALARM_RUN_BUDGET_MS = 20_000;
/** Most events one enqueue call may carry (a room flush is far smaller; this bounds a single transaction). */
export const MAX_ENQUEUE_BATCH = 1000;

export interface EnqueueOptions {
  /**
   * Deduplicate by event id for as long as AppliedLedger keeps records (days), not only while pending.
   * For events with deterministic ids that a retried caller may hand over again (ingress's notification.sent).
   * Off by default: fresh ids (chat, presence) need no ledger row each.
   */
  once?: boolean;
}

export interface OutboxStatus {
  pending: number;
  deadLetters: number;
  /** delivered to the bridge (2xx) since this shard was created */
  delivered: number;
  /** consecutive failed attempts of the event at the head of the queue */
  failures: number;
  lastError: string | null;
  /** when the next delivery attempt is scheduled (ms since epoch), null when idle */
  nextAttemptAt: number | null;
}

/** A permanently refused event. `body` is the event's JSON exactly as stored and sent (JSON text, because
 *  envelopes carry free-form `data` that the RPC types cannot express). */
export interface DeadLetter {
  id: string;
  type: string;
  reason: string;
  deadAt: number;
  body: string;
}

/** UTF-8 size of a string, encoding only when the character count alone cannot settle it (the common case). */
function utf8Bytes(text: string): number {
  return text.length * 3 <= MAX_EVENT_BYTES ? text.length : utf8(text).byteLength;
}

type Row = { seq: number; id: string; type: string; body: string };

/** Bytes of `{"batch":[` + `]}` around the events. */
const BATCH_FRAME_BYTES = 12;

/**
 * The next batch from rows[start]: up to `max` events whose bodies together stay under MAX_BATCH_BYTES
 * (always at least one: a stored event is at most MAX_EVENT_BYTES, well under it).
 */
export function takeBatch<R extends { body: string }>(rows: readonly R[], start: number, max: number): R[] {
  const batch: R[] = [];
  let bytes = BATCH_FRAME_BYTES;
  for (let i = start; i < rows.length && batch.length < max; i++) {
    const size = utf8(rows[i]!.body).byteLength + 1;
    if (batch.length > 0 && bytes + size > MAX_BATCH_BYTES) break;
    batch.push(rows[i]!);
    bytes += size;
  }
  return batch;
}

type Meta = { delivered: number; failures: number; last_error: string | null };

export class EventOutbox extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly ledger: AppliedLedger;
  private readonly config: OutboxConfig;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.config = outboxConfig(env as Env & OutboxVars);
    this.sql = ctx.storage.sql;
    // seq keeps hand-over order; id UNIQUE makes a repeat of a still-pending event a no-op.
    this.sql.exec(`CREATE TABLE IF NOT EXISTS outbox (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
      body TEXT NOT NULL, enqueued_at INTEGER NOT NULL)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS dead_letters (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL,
      reason TEXT NOT NULL, dead_at INTEGER NOT NULL)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS outbox_meta (
      k INTEGER PRIMARY KEY CHECK (k = 1), delivered INTEGER NOT NULL, failures INTEGER NOT NULL, last_error TEXT)`);
    this.sql.exec("INSERT OR IGNORE INTO outbox_meta (k, delivered, failures, last_error) VALUES (1, 0, 0, NULL)");
    this.ledger = new AppliedLedger(ctx.storage);
  }

  /**
   * Stores `events` for delivery (all or none) and makes sure an alarm will deliver them.
   * Resolves once they are durably stored. Throws, storing nothing, if any event is not a valid envelope
   * or is larger than MAX_EVENT_BYTES (the bridge would refuse it forever).
   */
  async enqueue(events: Envelope[], opts: EnqueueOptions = {}): Promise<{ stored: number }> {
    if (events.length > MAX_ENQUEUE_BATCH) throw new Error(`outbox: at most ${MAX_ENQUEUE_BATCH} events per call, got ${events.length}`);
    const rows = events.map((event, i) => {
      const checked = parseEvent(event);
      if (!checked.ok) throw new Error(`outbox: event ${i} (${String((event as { id?: unknown })?.id)}) refused: ${checked.error}`);
      const body = JSON.stringify(checked.event);
      if (utf8Bytes(body) > MAX_EVENT_BYTES) throw new Error(`outbox: event ${checked.event.id} is larger than ${MAX_EVENT_BYTES} bytes`);
      return { id: checked.event.id, type: checked.event.type, body };
    });
    const now = Date.now();
    let stored = 0;
    // Rows go in as one JSON array through json_each: one INSERT statement per batch, whatever its size
    // (bound parameters per statement are limited). RETURNING yields a row only for a row actually inserted.
    const insert = (batch: typeof rows) =>
      this.sql.exec(
        `INSERT INTO outbox (id, type, body, enqueued_at)
         SELECT json_extract(value, '$.id'), json_extract(value, '$.type'), json_extract(value, '$.body'), ?
         FROM json_each(?) WHERE true ORDER BY key
         ON CONFLICT (id) DO NOTHING RETURNING seq`,
        now,
        JSON.stringify(batch),
      ).toArray().length;
    this.ctx.storage.transactionSync(() => {
      if (!opts.once) {
        stored = insert(rows);
        return;
      }
      for (const row of rows) {
        const outcome = this.ledger.applyOnce(row.id, () => insert([row]), now);
        if (outcome.applied) stored += outcome.result;
      }
    });
    // An alarm already set is either "now" or a backoff in progress: either way it will pick these up.
    if (stored > 0 && (await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(now);
    return { stored };
  }

  override async alarm(): Promise<void> {
    const target = { url: this.env.BRIDGE_URL, secret: this.env.BRIDGE_INGRESS_SECRET, timeoutMs: this.config.deliveryTimeoutMs };
    const started = Date.now();
    for (;;) {
      const rows = this.sql.exec<Row>("SELECT seq, id, type, body FROM outbox ORDER BY seq LIMIT ?", Math.max(READ_BATCH, this.config.batchMax)).toArray();
      if (rows.length === 0) return; // idle: no alarm until the next enqueue
      const retry = this.config.batchMax > 1 ? await this.deliverBatches(target, rows) : await this.deliverSingly(target, rows);
      if (retry) {
        const failures = this.meta().failures + 1;
        const delay = retryDelayMs(failures, this.config);
        this.sql.exec("UPDATE outbox_meta SET failures = ?, last_error = ? WHERE k = 1", failures, retry.reason);
        console.warn(`outbox ${this.ctx.id.name ?? this.ctx.id}: ${retry.id} not delivered (attempt ${failures}), retry in ${delay} ms: ${retry.reason}`);
        await this.ctx.storage.setAlarm(Date.now() + delay);
        return;
      }
      if (Date.now() - started > ALARM_RUN_BUDGET_MS) {
        await this.ctx.storage.setAlarm(Date.now());
        return;
      }
    }
  }

  /**
   * Delivers `rows` (queue order) one POST per event; stops at the first that must be retried and says why.
   * Used with OUTBOX_BATCH_MAX=1, and for a batch the bridge refused as a whole.
   */
  private async deliverSingly(target: DeliveryTarget, rows: Row[]): Promise<{ id: string; reason: string } | null> {
    for (const row of rows) {
      const outcome = await deliverEvent(target, row.id, row.body);
      if (outcome.kind === "retry") return { id: row.id, reason: outcome.reason };
      this.settle([[row, outcome]]);
    }
    return null;
  }

  /**
   * Delivers `rows` in batches of up to OUTBOX_BATCH_MAX events and MAX_BATCH_BYTES, in queue order, and settles
   * each event by its own result: delivered -> deleted, rejected -> dead letter, failed -> kept. Returns the
   * reason to back off when a batch failed as a whole or any of its events must be retried (they stay at the
   * head of the queue, so the next attempt starts with them). Later events of the same batch that the bridge
   * stored are settled anyway: holding them back would not un-store them.
   */
  private async deliverBatches(target: DeliveryTarget, rows: Row[]): Promise<{ id: string; reason: string } | null> {
    for (let start = 0; start < rows.length; ) {
      const batch = takeBatch(rows, start, this.config.batchMax);
      start += batch.length;
      const outcome = await deliverBatch(target, batch);
      if (outcome.kind === "retry") return { id: `${batch.length} event(s) from ${batch[0]!.id}`, reason: outcome.reason };
      if (outcome.kind === "refused") {
        console.warn(`outbox ${this.ctx.id.name ?? this.ctx.id}: batch of ${batch.length} refused as a whole, sending them one by one: ${outcome.reason}`);
        const retry = await this.deliverSingly(target, batch);
        if (retry) return retry;
        continue;
      }
      this.settle(outcome.results.flatMap((result, i): [Row, Exclude<EventDelivery, { kind: "retry" }>][] => (result.kind === "retry" ? [] : [[batch[i]!, result]])));
      const failed = outcome.results.findIndex((r) => r.kind === "retry");
      if (failed >= 0) {
        const result = outcome.results[failed] as { reason: string };
        const others = outcome.results.filter((r) => r.kind === "retry").length - 1;
        return { id: batch[failed]!.id + (others > 0 ? ` and ${others} more` : ""), reason: result.reason };
      }
    }
    return null;
  }

  /** Removes delivered or permanently refused events from the queue (refused ones go to dead_letters), in one transaction. */
  private settle(settled: [Row, { kind: "delivered" } | { kind: "dead"; reason: string }][]): void {
    if (settled.length === 0) return;
    this.ctx.storage.transactionSync(() => {
      let delivered = 0;
      let lastReason: string | null = null;
      for (const [row, outcome] of settled) {
        this.sql.exec("DELETE FROM outbox WHERE seq = ?", row.seq);
        if (outcome.kind === "delivered") {
          delivered++;
          continue;
        }
        this.sql.exec(
          "INSERT INTO dead_letters (id, type, body, reason, dead_at) VALUES (?, ?, ?, ?, ?)",
          row.id,
          row.type,
          row.body,
          outcome.reason,
          Date.now(),
        );
        lastReason = outcome.reason;
        console.error(`outbox ${this.ctx.id.name ?? this.ctx.id}: ${row.id} (${row.type}) dead-lettered: ${outcome.reason}`);
      }
      // A settled event ends the run of failures at the head; a dead letter's reason stays visible as lastError.
      this.sql.exec("UPDATE outbox_meta SET delivered = delivered + ?, failures = 0, last_error = ? WHERE k = 1", delivered, lastReason);
    });
  }

  private meta(): Meta {
    return this.sql.exec<Meta>("SELECT delivered, failures, last_error FROM outbox_meta WHERE k = 1").one();
  }

  async status(): Promise<OutboxStatus> {
    const meta = this.meta();
    const count = (table: string) => this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).one().n;
    return {
      pending: count("outbox"),
      deadLetters: count("dead_letters"),
      delivered: meta.delivered,
      failures: meta.failures,
      lastError: meta.last_error,
      nextAttemptAt: await this.ctx.storage.getAlarm(),
    };
  }

  /** Pending events in delivery order, as their JSON text (for operators and tests). */
  async pending(limit = 100): Promise<string[]> {
    return this.sql
      .exec<{ body: string }>("SELECT body FROM outbox ORDER BY seq LIMIT ?", Math.max(1, Math.min(limit, 1000)))
      .toArray()
      .map((r) => r.body);
  }

  async deadLetters(limit = 100): Promise<DeadLetter[]> {
    return this.sql
      .exec<{ id: string; type: string; body: string; reason: string; dead_at: number }>(
        "SELECT id, type, body, reason, dead_at FROM dead_letters ORDER BY seq LIMIT ?",
        Math.max(1, Math.min(limit, 1000)),
      )
      .toArray()
      .map((r) => ({ id: r.id, type: r.type, reason: r.reason, deadAt: r.dead_at, body: r.body }));
  }

  /**
   * Puts every dead letter back at the end of the queue (after the cause was fixed on the media side).
   * Returns how many were requeued.
   */
  async requeueDeadLetters(): Promise<{ requeued: number }> {
    const now = Date.now();
    let requeued = 0;
    this.ctx.storage.transactionSync(() => {
      requeued = this.sql.exec(
        "INSERT INTO outbox (id, type, body, enqueued_at) SELECT id, type, body, ? FROM dead_letters WHERE true ORDER BY seq ON CONFLICT (id) DO NOTHING RETURNING seq",
        now,
      ).toArray().length;
      this.sql.exec("DELETE FROM dead_letters");
    });
    if (requeued > 0 && (await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(now);
    return { requeued };
  }
}
