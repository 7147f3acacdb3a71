// Exactly-once effect for events that reach a Durable Object (room, inbox) at least once.
//
// Bridges retry until they see a 2xx, so an event can arrive twice. The object that applies it records
// the event id in its own SQLite storage in the same synchronous transaction as the effect: either both
// happen or neither does, and a second arrival finds the id and changes nothing.
//
// Records are kept for RETENTION_MS (longer than any bridge retries: see the NATS->HTTP bridge's max age),
// and pruned a batch at a time as new events are claimed, so the table stays small without an alarm.

/**
 * What an object's `applyEvents` (batch RPC) says about one event, in input order: applied now, already
 * applied (`applied: false`), or not applicable here (`error`, nothing of it stored; the caller retries it).
 */
export type EventApplyOutcome = { id: string; applied: boolean } | { id: string; applied: false; error: string };

/** The id an item claims to have, for reporting on items that are not valid events. */
export function claimedId(item: unknown, index: number): string {
  const id = (item as { id?: unknown } | null)?.id;
  return typeof id === "string" ? id.slice(0, 128) : `#${index}`;
}

/** A thrown value as text for an outcome's `error`. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export const APPLIED_EVENT_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;
const PRUNE_EVERY = 256;
const PRUNE_BATCH = 1000;

export class AppliedLedger {
  // Starts one short of a prune, so the first claim after the object is (re)built prunes: hibernating objects
  // are rebuilt often and may never make PRUNE_EVERY claims in one life.
  private claims = PRUNE_EVERY - 1;
  private readonly storage: DurableObjectStorage;

  constructor(storage: DurableObjectStorage) {
    this.storage = storage;
    storage.sql.exec("CREATE TABLE IF NOT EXISTS applied_events (id TEXT PRIMARY KEY, at INTEGER NOT NULL)");
    storage.sql.exec("CREATE INDEX IF NOT EXISTS applied_events_at ON applied_events (at)");
  }

  has(eventId: string): boolean {
    return this.storage.sql.exec("SELECT 1 FROM applied_events WHERE id = ?", eventId).toArray().length > 0;
  }

  /**
   * Runs `effect` and records `eventId` atomically, unless the id was already recorded.
   * `effect` must only do synchronous storage work (SQL); anything outward (broadcasts) goes after,
   * driven by the returned value. Returns `{ applied: false }` for a duplicate.
   */
  applyOnce<T>(eventId: string, effect: () => T, now = Date.now()): { applied: true; result: T } | { applied: false } {
    const outcome = this.storage.transactionSync(() => {
      if (this.has(eventId)) return { applied: false as const };
      const result = effect();
      this.storage.sql.exec("INSERT INTO applied_events (id, at) VALUES (?, ?)", eventId, now);
      return { applied: true as const, result };
    });
    if (outcome.applied) this.countClaims(1, now);
    return outcome;
  }

  /**
   * Exactly-once for a batch: ONE statement records the ids not recorded yet and says which they were, in one
   * transaction with `apply`. `apply(fresh)` learns, per id, whether this is its first time (an id repeated
   * within the batch is fresh once) and must only do synchronous storage work; if it throws, nothing of the
   * batch is stored and the error propagates. Outward effects (broadcasts) go after, driven by `fresh`.
   */
  claimMany<T>(ids: readonly string[], apply: (fresh: boolean[]) => T, now = Date.now()): { fresh: boolean[]; result: T } {
    const outcome = this.storage.transactionSync(() => {
      // One statement both checks and records: the ids it inserts are the new ones (an id repeated within the
      // batch is inserted once). `apply` runs after it in the same transaction, so if it throws, the ids go too.
      const inserted = new Set(
        this.storage.sql
          .exec<{ id: string }>(
            "INSERT INTO applied_events (id, at) SELECT value, ? FROM json_each(?) WHERE true ON CONFLICT (id) DO NOTHING RETURNING id",
            now,
            JSON.stringify(ids),
          )
          .toArray()
          .map((r) => r.id),
      );
      const fresh = ids.map((id) => inserted.delete(id));
      const result = apply(fresh);
      return { fresh, result, claimed: fresh.filter(Boolean).length };
    });
    this.countClaims(outcome.claimed, now);
    return { fresh: outcome.fresh, result: outcome.result };
  }

  /**
   * applyOnce for many events in ONE transaction (one commit instead of one per event), with each event's
   * effect isolated: an effect that throws rolls back only that event's work and id, which comes back as
   * `{ error }`; the others stay applied. Items are handled in order, so an id repeated within the batch is
   * applied once and then reported as a duplicate.
   *
   * Fast path: every effect runs in one claimMany (no savepoint per event). Only if one of them throws is that
   * rolled back whole and the batch redone with a savepoint (nested transaction) per event to isolate it.
   */
  applyManyOnce<I extends { id: string }, T>(
    items: readonly I[],
    effect: (item: I) => T,
    now = Date.now(),
  ): ({ applied: true; result: T } | { applied: false } | { applied: false; error: unknown })[] {
    try {
      const { fresh, result } = this.claimMany(
        items.map((item) => item.id),
        (fresh) => items.map((item, i) => (fresh[i] ? effect(item) : undefined)),
        now,
      );
      return items.map((_, i) => (fresh[i] ? { applied: true as const, result: result[i] as T } : { applied: false as const }));
    } catch {
      return this.storage.transactionSync(() =>
        items.map((item) => {
          try {
            return this.applyOnce(item.id, () => effect(item), now);
          } catch (error) {
            return { applied: false as const, error };
          }
        }),
      );
    }
  }

  private countClaims(n: number, now: number): void {
    const before = this.claims;
    this.claims += n;
    if (Math.floor(before / PRUNE_EVERY) !== Math.floor(this.claims / PRUNE_EVERY)) this.prune(now);
  }

  /** The newest recorded ids (a room that grows big hands them to its coordinator, so a retried event stays applied once). */
  recent(limit: number): { id: string; at: number }[] {
    return this.storage.sql.exec<{ id: string; at: number }>("SELECT id, at FROM applied_events ORDER BY at DESC LIMIT ?", limit).toArray();
  }

  /** Records ids applied elsewhere (see recent()); ids already recorded stay as they are. */
  adopt(rows: readonly { id: string; at: number }[]): void {
    if (rows.length === 0) return;
    this.storage.sql.exec(
      "INSERT INTO applied_events (id, at) SELECT json_extract(value, '$.id'), json_extract(value, '$.at') FROM json_each(?) WHERE true ON CONFLICT (id) DO NOTHING",
      JSON.stringify(rows),
    );
  }

  prune(now = Date.now()): void {
    this.storage.sql.exec(
      "DELETE FROM applied_events WHERE id IN (SELECT id FROM applied_events WHERE at < ? ORDER BY at LIMIT ?)",
      now - APPLIED_EVENT_RETENTION_MS,
      PRUNE_BATCH,
    );
  }
}
