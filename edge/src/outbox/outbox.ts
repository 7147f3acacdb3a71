// The outbox a Room or an Inbox carries inside itself: events for the media side (chat.message, presence.update,
// notification.sent) are written to the object's own SQLite in the same transaction as the effect they report,
// and delivered to the HTTP->NATS bridge later by the object's alarm. One write per event, one retry policy,
// one dead-letter view, whichever object carries it.
//
// Delivery: in order, up to OUTBOX_BATCH_MAX events per POST in the batch format (shared/batch.ts: one signature
// and one round trip for many events, since the cost per request dominates). Each event is settled by its own
// result: stored -> forgotten, rejected (permanent) -> a dead-letter table with the reason, failed (temporary) ->
// kept at the head of the queue. A failed request or a failed event stops the run and reschedules the alarm with
// exponential backoff; a media side that is down for an hour receives everything when it returns. Rows and the
// alarm are durable, so an evicted or redeployed object delivers what it left when the alarm fires.
//
// Single POSTs remain for two reasons: OUTBOX_BATCH_MAX=1 (a bridge that does not take batches), and a batch
// refused AS A WHOLE with a permanent 4xx: that verdict is about the request (an older bridge answering 400 to
// the batch body, a lower size limit), not about any one event, so instead of dead-lettering up to 100 good
// events the outbox sends that batch's events one by one, where each gets a verdict of its own.
//
// Storage is bounded: past OUTBOX_MAX_PENDING waiting events the oldest are dropped and counted (status
// `dropped`), so a long bridge outage cannot grow one room without limit.

import { MAX_BATCH_BYTES } from "../../../shared/batch.ts";
import { backoffDelay } from "../../../shared/backoff.ts";
import { utf8ByteLength } from "../../../shared/encoding.ts";
import { type Envelope, MAX_EVENT_BYTES, parseEvent } from "../../../shared/envelope.ts";
import { deliverBatch, deliverEvent, type DeliveryTarget, type EventDelivery } from "./deliver.ts";

/** Events read per query inside one alarm run. */
const READ_BATCH = 64;
/** An alarm run hands over to a fresh alarm after this long, so one run never nears the CPU/wall limits. */
const ALARM_RUN_BUDGET_MS = 20_000;
/** +/- fraction of random spread applied to each retry delay, so outboxes that failed together do not return in lockstep. */
export const OUTBOX_JITTER = 0.2;

export interface OutboxOptions {
  retryBaseMs: number;
  retryMaxMs: number;
  deliveryTimeoutMs: number;
  /** events per POST (1 = single-event form) */
  batchMax: number;
  /** most events kept waiting; past it the oldest are dropped */
  maxPending: number;
  /** how long newly added events wait before delivery, so events close together leave in one batch */
  gatherMs: number;
  /** where and how to deliver (read when an alarm runs) */
  target: () => DeliveryTarget;
  /** names the carrying object in logs */
  label: () => string;
}

export interface OutboxStatus {
  pending: number;
  deadLetters: number;
  /** delivered to the bridge (2xx) since this outbox was created */
  delivered: number;
  /** events dropped because more than OUTBOX_MAX_PENDING were waiting */
  dropped: number;
  /** consecutive failed attempts of the event at the head of the queue */
  failures: number;
  lastError: string | null;
  /** when the last failed attempt was settled (ms since epoch); the retry delay is nextAttemptAt minus this */
  lastFailureAt: number | null;
  /** when the next delivery attempt is scheduled (ms since epoch), null when idle */
  nextAttemptAt: number | null;
}

/** A permanently refused event. `body` is the event's JSON exactly as stored and sent. */
export interface DeadLetter {
  id: string;
  type: string;
  reason: string;
  deadAt: number;
  body: string;
}

/** An event checked and serialized for the outbox table. */
export type OutboxRow = { id: string; type: string; body: string };

type Row = { seq: number; id: string; type: string; body: string };
type Meta = { delivered: number; dropped: number; failures: number; last_error: string | null; failed_at: number | null };

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
    const size = utf8ByteLength(rows[i]!.body) + 1;
    if (batch.length > 0 && bytes + size > MAX_BATCH_BYTES) break;
    batch.push(rows[i]!);
    bytes += size;
  }
  return batch;
}

/** Checks and serializes one event for the outbox; throws (clear message) for an invalid or oversized one. */
export function outboxRow(event: Envelope): OutboxRow {
  const checked = parseEvent(event);
  if (!checked.ok) throw new Error(`outbox: event ${String((event as { id?: unknown })?.id)} refused: ${checked.error}`);
  const body = JSON.stringify(checked.event);
  if (utf8ByteLength(body, MAX_EVENT_BYTES) > MAX_EVENT_BYTES) throw new Error(`outbox: event ${checked.event.id} is larger than ${MAX_EVENT_BYTES} bytes`);
  return { id: checked.event.id, type: checked.event.type, body };
}

/**
 * The row of an event this side has just built with makeEvent, whose data makeEvent checked against its schema:
 * serialized and size-checked, not parsed a second time (that parse cost as much as storing the row, on every
 * chat message). Events from anywhere else go through outboxRow.
 */
export function madeEventRow(event: Envelope): OutboxRow {
  const body = JSON.stringify(event);
  if (utf8ByteLength(body, MAX_EVENT_BYTES) > MAX_EVENT_BYTES) throw new Error(`outbox: event ${event.id} is larger than ${MAX_EVENT_BYTES} bytes`);
  return { id: event.id, type: event.type, body };
}

export class Outbox {
  private readonly storage: DurableObjectStorage;
  private readonly sql: SqlStorage;
  private readonly opts: OutboxOptions;
  /** an alarm is known to be set (or running) in this life of the object; avoids a storage call per event */
  private alarmSet = false;
  /**
   * Rows waiting, as this instance counts them: read once per life of the object (the first time it is needed)
   * and kept up to date by every change made here, so adding an event costs no COUNT(*) over the queue. It is
   * a trigger, not the truth: bound() recounts before it drops anything (an add rolled back with its caller's
   * transaction leaves it high), and an empty queue resets it.
   */
  private waiting: number | null = null;

  constructor(storage: DurableObjectStorage, opts: OutboxOptions) {
    this.storage = storage;
    this.sql = storage.sql;
    this.opts = opts;
    // seq keeps hand-over order; id UNIQUE makes a repeat of a still-pending event a no-op.
    this.sql.exec(`CREATE TABLE IF NOT EXISTS outbox (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
      body TEXT NOT NULL, enqueued_at INTEGER NOT NULL)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS outbox_dead_letters (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL,
      reason TEXT NOT NULL, dead_at INTEGER NOT NULL)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS outbox_meta (
      k INTEGER PRIMARY KEY CHECK (k = 1), delivered INTEGER NOT NULL, dropped INTEGER NOT NULL DEFAULT 0,
      failures INTEGER NOT NULL, last_error TEXT, failed_at INTEGER)`);
    this.sql.exec("INSERT OR IGNORE INTO outbox_meta (k, delivered, dropped, failures, last_error) VALUES (1, 0, 0, 0, NULL)");
  }

  /**
   * Makes sure events left by an earlier life of the object (written without an alarm, or by an older version
   * of the code) get an alarm. Call once when the object starts (awaited inside blockConcurrencyWhile or onStart).
   */
  async resume(): Promise<void> {
    if (this.pendingCount() === 0) return;
    if ((await this.storage.getAlarm()) === null) await this.storage.setAlarm(Date.now());
    this.alarmSet = true;
  }

  /**
   * Stores events for delivery, synchronously, so the caller can do it in the same transaction as the effect
   * they report. Throws, storing nothing, when any event is invalid (then the caller's transaction rolls back).
   * Returns how many were stored (a repeat of a still-pending id is absorbed).
   */
  add(events: readonly (Envelope | OutboxRow)[]): number {
    if (events.length === 0) return 0;
    const rows = events.map((e) => ("body" in e && typeof e.body === "string" ? (e as OutboxRow) : outboxRow(e as Envelope)));
    const before = this.waitingCount();
    // One INSERT per call: a plain one for one row (a chat message's event: the common case, on the chat path),
    // through json_each for many, whatever the count (bound parameters per statement are limited).
    // RETURNING yields a row only for a row actually inserted.
    const row = rows.length === 1 ? rows[0]! : null;
    const stored = (
      row
        ? this.sql.exec("INSERT INTO outbox (id, type, body, enqueued_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING seq", row.id, row.type, row.body, Date.now())
        : this.sql.exec(
            `INSERT INTO outbox (id, type, body, enqueued_at)
             SELECT json_extract(value, '$.id'), json_extract(value, '$.type'), json_extract(value, '$.body'), ?
             FROM json_each(?) WHERE true ORDER BY key
             ON CONFLICT (id) DO NOTHING RETURNING seq`,
            Date.now(),
            JSON.stringify(rows),
          )
    ).toArray().length;
    this.waiting = before + stored;
    // A little past the bound before trimming, so a full queue (bridge down) recounts once per `slack` adds.
    const slack = Math.min(100, Math.max(1, Math.floor(this.opts.maxPending / 10)));
    if (this.waiting >= this.opts.maxPending + slack) this.bound();
    if (stored > 0) this.schedule();
    return stored;
  }

  /** Rows waiting, counted in storage (and the running count set from it). */
  pendingCount(): number {
    this.waiting = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM outbox").one().n;
    return this.waiting;
  }

  private waitingCount(): number {
    return this.waiting ?? this.pendingCount();
  }

  /** Drops the oldest waiting events past maxPending (counted; logged on the first drop of a run). */
  private bound(): void {
    const over = this.pendingCount() - this.opts.maxPending;
    if (over <= 0) return;
    this.sql.exec("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", over);
    this.waiting = this.opts.maxPending;
    const before = this.meta().dropped;
    this.sql.exec("UPDATE outbox_meta SET dropped = dropped + ? WHERE k = 1", over);
    if (before === 0 || Math.floor((before + over) / 1000) > Math.floor(before / 1000)) {
      console.error(`outbox ${this.opts.label()}: more than ${this.opts.maxPending} events waiting for the bridge; dropped the oldest (${before + over} so far)`);
    }
  }

  /**
   * Sets an alarm gatherMs from now unless one is known to be set; an alarm already set picks the new rows up.
   * Issued after the current synchronous turn, so it never runs inside the caller's transactionSync.
   */
  private schedule(): void {
    if (this.alarmSet) return;
    this.alarmSet = true;
    const at = Date.now() + this.opts.gatherMs;
    queueMicrotask(() => {
      this.storage.setAlarm(at).catch((error: unknown) => {
        this.alarmSet = false;
        console.error(`outbox ${this.opts.label()}: could not set its alarm:`, error);
      });
    });
  }

  /** The carrying object's alarm handler: delivers what is waiting, then sleeps, backs off, or hands over to a new alarm. */
  async deliver(): Promise<void> {
    this.alarmSet = true; // whatever happens below ends with an alarm set, or with nothing left to deliver
    const target = this.opts.target();
    const started = Date.now();
    for (;;) {
      const rows = this.sql.exec<Row>("SELECT seq, id, type, body FROM outbox ORDER BY seq LIMIT ?", Math.max(READ_BATCH, this.opts.batchMax)).toArray();
      if (rows.length === 0) {
        this.waiting = 0;
        this.alarmSet = false; // idle: no alarm until the next add
        return;
      }
      const retry = this.opts.batchMax > 1 ? await this.deliverBatches(target, rows) : await this.deliverSingly(target, rows);
      if (retry) {
        const failures = this.meta().failures + 1;
        const delay = backoffDelay(failures, { baseMs: this.opts.retryBaseMs, maxMs: this.opts.retryMaxMs, jitter: OUTBOX_JITTER });
        const now = Date.now();
        this.sql.exec("UPDATE outbox_meta SET failures = ?, last_error = ?, failed_at = ? WHERE k = 1", failures, retry.reason, now);
        console.warn(`outbox ${this.opts.label()}: ${retry.id} not delivered (attempt ${failures}), retry in ${delay} ms: ${retry.reason}`);
        await this.storage.setAlarm(now + delay);
        return;
      }
      if (Date.now() - started > ALARM_RUN_BUDGET_MS) {
        await this.storage.setAlarm(Date.now());
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
      const batch = takeBatch(rows, start, this.opts.batchMax);
      start += batch.length;
      const outcome = await deliverBatch(target, batch);
      if (outcome.kind === "retry") return { id: `${batch.length} event(s) from ${batch[0]!.id}`, reason: outcome.reason };
      if (outcome.kind === "refused") {
        console.warn(`outbox ${this.opts.label()}: batch of ${batch.length} refused as a whole, sending them one by one: ${outcome.reason}`);
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

  /** Removes delivered or permanently refused events from the queue (refused ones become dead letters), in one transaction. */
  private settle(settled: [Row, { kind: "delivered" } | { kind: "dead"; reason: string }][]): void {
    if (settled.length === 0) return;
    this.storage.transactionSync(() => {
      let delivered = 0;
      let lastReason: string | null = null;
      for (const [row, outcome] of settled) {
        this.sql.exec("DELETE FROM outbox WHERE seq = ?", row.seq);
        if (outcome.kind === "delivered") {
          delivered++;
          continue;
        }
        this.sql.exec("INSERT INTO outbox_dead_letters (id, type, body, reason, dead_at) VALUES (?, ?, ?, ?, ?)", row.id, row.type, row.body, outcome.reason, Date.now());
        lastReason = outcome.reason;
        console.error(`outbox ${this.opts.label()}: ${row.id} (${row.type}) dead-lettered: ${outcome.reason}`);
      }
      // A settled event ends the run of failures at the head; a dead letter's reason stays visible as lastError.
      this.sql.exec("UPDATE outbox_meta SET delivered = delivered + ?, failures = 0, last_error = ? WHERE k = 1", delivered, lastReason);
    });
    if (this.waiting !== null) this.waiting = Math.max(0, this.waiting - settled.length);
  }

  private meta(): Meta {
    return this.sql.exec<Meta>("SELECT delivered, dropped, failures, last_error, failed_at FROM outbox_meta WHERE k = 1").one();
  }

  async status(): Promise<OutboxStatus> {
    const meta = this.meta();
    const count = (table: string) => this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).one().n;
    return {
      pending: count("outbox"),
      deadLetters: count("outbox_dead_letters"),
      delivered: meta.delivered,
      dropped: meta.dropped,
      failures: meta.failures,
      lastError: meta.last_error,
      lastFailureAt: meta.failed_at,
      nextAttemptAt: await this.storage.getAlarm(),
    };
  }

  /** Waiting events in delivery order, as their JSON text (for operators and tests). */
  pending(limit = 100): string[] {
    return this.sql
      .exec<{ body: string }>("SELECT body FROM outbox ORDER BY seq LIMIT ?", Math.max(1, Math.min(limit, 1000)))
      .toArray()
      .map((r) => r.body);
  }

  deadLetters(limit = 100): DeadLetter[] {
    return this.sql
      .exec<{ id: string; type: string; body: string; reason: string; dead_at: number }>(
        "SELECT id, type, body, reason, dead_at FROM outbox_dead_letters ORDER BY seq LIMIT ?",
        Math.max(1, Math.min(limit, 1000)),
      )
      .toArray()
      .map((r) => ({ id: r.id, type: r.type, reason: r.reason, deadAt: r.dead_at, body: r.body }));
  }

  /** Puts every dead letter back at the end of the queue (after the cause was fixed on the media side). */
  async requeueDeadLetters(): Promise<{ requeued: number }> {
    let requeued = 0;
    this.storage.transactionSync(() => {
      requeued = this.sql
        .exec(
          "INSERT INTO outbox (id, type, body, enqueued_at) SELECT id, type, body, ? FROM outbox_dead_letters WHERE true ORDER BY seq ON CONFLICT (id) DO NOTHING RETURNING seq",
          Date.now(),
        )
        .toArray().length;
      this.sql.exec("DELETE FROM outbox_dead_letters");
    });
    if (this.waiting !== null) this.waiting += requeued;
    if (requeued > 0 && (await this.storage.getAlarm()) === null) await this.storage.setAlarm(Date.now());
    if (requeued > 0) this.alarmSet = true;
    return { requeued };
  }
}

/** What a Room or an Inbox answers about its outbox over RPC (operator routes and tests). */
export interface OutboxView {
  outboxStatus(): Promise<OutboxStatus>;
  outboxPending(limit?: number): Promise<string[]>;
  outboxDeadLetters(limit?: number): Promise<DeadLetter[]>;
  requeueDeadLetters(): Promise<{ requeued: number }>;
}
