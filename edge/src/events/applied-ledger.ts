// Exactly-once effect for events that reach a Durable Object (room, inbox) at least once.
//
// Bridges retry until they see a 2xx, so an event can arrive twice. The object that applies it records
// the event id in its own SQLite storage in the same synchronous transaction as the effect: either both
// happen or neither does, and a second arrival finds the id and changes nothing.
//
// Records are kept for RETENTION_MS (longer than any bridge retries: see the NATS->HTTP bridge's max age),
// and pruned a batch at a time as new events are claimed, so the table stays small without an alarm.

export const APPLIED_EVENT_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;
const PRUNE_EVERY = 256;
const PRUNE_BATCH = 1000;

export class AppliedLedger {
  private claims = 0;
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
    if (outcome.applied && ++this.claims % PRUNE_EVERY === 0) this.prune(now);
    return outcome;
  }

  prune(now = Date.now()): void {
    this.storage.sql.exec(
      "DELETE FROM applied_events WHERE id IN (SELECT id FROM applied_events WHERE at < ? ORDER BY at LIMIT ?)",
      now - APPLIED_EVENT_RETENTION_MS,
      PRUNE_BATCH,
    );
  }
}
