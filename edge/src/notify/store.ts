// A user's push subscriptions, notification preferences and pending push/email deliveries, in the inbox's own
// SQLite. Synchronous SQL only, so rows can be written in the same transaction as the notification (a delivery
// exists exactly when its notification does) and settled in the same transaction as its notification.sent.
import { DEFAULT_PREFERENCES, type NotificationPreferences, notificationPreferences, type PushSubscriptionJson, type PushSubscriptionView } from "../../../shared/protocol/notifications.ts";

export type Channel = "push" | "email";

export interface StoredSubscription extends PushSubscriptionView {
  p256dh: string;
  auth: string;
}

/**
 * A pending delivery. `state` (push): the subscriptions that took it already (a retry skips them), counts of gone
 * and refusing ones, and the requests still unanswered (`inflight`: subscription id -> when it was sent), which
 * nothing resends while they run. `retry` keeps the last retryable answer while others are still awaited.
 */
export interface Delivery {
  notificationId: string;
  channel: Channel;
  dueAt: number;
  attempts: number;
  state: DeliveryState;
}

export interface DeliveryState {
  ok: string[];
  expired: number;
  failed: number;
  inflight?: Record<string, number>;
  retry?: { reason: string; retryAfterMs?: number };
}

type SubRow = { id: string; endpoint: string; p256dh: string; auth: string; expiration_time: number | null; created_at: number; last_ok_at: number | null };
type DeliveryRow = { notification_id: string; channel: Channel; due_at: number; attempts: number; state: string };

function subFromRow(r: SubRow): StoredSubscription {
  return { id: r.id, endpoint: r.endpoint, p256dh: r.p256dh, auth: r.auth, expirationTime: r.expiration_time, createdAt: r.created_at, lastOkAt: r.last_ok_at };
}

function deliveryFromRow(r: DeliveryRow): Delivery {
  return { notificationId: r.notification_id, channel: r.channel, dueAt: r.due_at, attempts: r.attempts, state: JSON.parse(r.state) as DeliveryState };
}

export class NotifyStore {
  private readonly sql: SqlStorage;
  // Kept in memory for the life of the object, because they change only through this store and are read for
  // every notification (a statement each would be most of what a push costs the inbox in SQL):
  /** preferences */
  private prefsCache: NotificationPreferences | undefined;
  /** the user's devices (read when a notification is stored and when it is pushed) */
  private subsCache: StoredSubscription[] | undefined;
  /**
   * The earliest planned time, or null for none; undefined when not known (re-read). Never later than the truth:
   * a plan lowers it, and removing or moving a plan forgets it, so a rolled-back plan only costs one look.
   */
  private nextDueCache: number | null | undefined;

  constructor(storage: DurableObjectStorage) {
    this.sql = storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS push_subscriptions (
      id TEXT PRIMARY KEY, endpoint TEXT NOT NULL UNIQUE, p256dh TEXT NOT NULL, auth TEXT NOT NULL,
      expiration_time INTEGER, created_at INTEGER NOT NULL, last_ok_at INTEGER)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS notify_deliveries (
      notification_id TEXT NOT NULL, channel TEXT NOT NULL, due_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
      state TEXT NOT NULL DEFAULT '{"ok":[],"expired":0,"failed":0}', PRIMARY KEY (notification_id, channel))`);
    this.sql.exec("CREATE INDEX IF NOT EXISTS notify_deliveries_due ON notify_deliveries (due_at)");
    this.sql.exec("CREATE TABLE IF NOT EXISTS notify_meta (k INTEGER PRIMARY KEY CHECK (k = 1), prefs TEXT, last_email_at INTEGER)");
    this.sql.exec("INSERT OR IGNORE INTO notify_meta (k, prefs, last_email_at) VALUES (1, NULL, NULL)");
  }

  // ---- preferences ---------------------------------------------------------------------------------

  preferences(): NotificationPreferences {
    if (!this.prefsCache) {
      const raw = this.sql.exec<{ prefs: string | null }>("SELECT prefs FROM notify_meta WHERE k = 1").one().prefs;
      this.prefsCache = raw === null ? DEFAULT_PREFERENCES : notificationPreferences.parse(JSON.parse(raw));
    }
    return this.prefsCache;
  }

  setPreferences(prefs: NotificationPreferences): void {
    this.sql.exec("UPDATE notify_meta SET prefs = ? WHERE k = 1", JSON.stringify(prefs));
    this.prefsCache = prefs;
  }

  lastEmailAt(): number | null {
    return this.sql.exec<{ last_email_at: number | null }>("SELECT last_email_at FROM notify_meta WHERE k = 1").one().last_email_at;
  }

  setLastEmailAt(at: number): void {
    this.sql.exec("UPDATE notify_meta SET last_email_at = ? WHERE k = 1", at);
  }

  // ---- subscriptions -------------------------------------------------------------------------------

  /** Adds a device, or refreshes the keys of a known endpoint (a re-subscribe); the oldest go past `max`. */
  upsertSubscription(sub: PushSubscriptionJson, max: number, now = Date.now()): { subscription: PushSubscriptionView; created: boolean } {
    const existing = this.sql.exec<SubRow>("SELECT * FROM push_subscriptions WHERE endpoint = ?", sub.endpoint).toArray()[0];
    const id = existing?.id ?? `sub_${crypto.randomUUID().replace(/-/g, "")}`;
    this.sql.exec(
      `INSERT INTO push_subscriptions (id, endpoint, p256dh, auth, expiration_time, created_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (endpoint) DO UPDATE SET p256dh = excluded.p256dh, auth = excluded.auth, expiration_time = excluded.expiration_time`,
      id,
      sub.endpoint,
      sub.keys.p256dh,
      sub.keys.auth,
      sub.expirationTime ?? null,
      now,
    );
    this.sql.exec("DELETE FROM push_subscriptions WHERE id IN (SELECT id FROM push_subscriptions ORDER BY created_at DESC, id LIMIT -1 OFFSET ?)", max);
    this.subsCache = undefined;
    const row = this.sql.exec<SubRow>("SELECT * FROM push_subscriptions WHERE id = ?", id).one();
    const { p256dh: _p, auth: _a, ...view } = subFromRow(row);
    return { subscription: view, created: !existing };
  }

  /** Oldest first. The array is shared: callers must not change it. */
  subscriptions(): readonly StoredSubscription[] {
    this.subsCache ??= this.sql.exec<SubRow>("SELECT * FROM push_subscriptions ORDER BY created_at, id").toArray().map(subFromRow);
    return this.subsCache;
  }

  subscriptionCount(): number {
    return this.subscriptions().length;
  }

  deleteSubscription(id: string): boolean {
    this.subsCache = undefined;
    return this.sql.exec("DELETE FROM push_subscriptions WHERE id = ? RETURNING id", id).toArray().length > 0;
  }

  markSubscriptionOk(id: string, at: number): void {
    this.subsCache = undefined;
    this.sql.exec("UPDATE push_subscriptions SET last_ok_at = ? WHERE id = ?", at, id);
  }

  // ---- deliveries ----------------------------------------------------------------------------------

  /** Plans a delivery; a second plan for the same notification and channel is a no-op (exactly once). */
  addDelivery(notificationId: string, channel: Channel, dueAt: number): void {
    this.sql.exec("INSERT INTO notify_deliveries (notification_id, channel, due_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", notificationId, channel, dueAt);
    if (this.nextDueCache !== undefined) this.nextDueCache = this.nextDueCache === null ? dueAt : Math.min(this.nextDueCache, dueAt);
  }

  delivery(notificationId: string, channel: Channel): Delivery | null {
    const row = this.sql.exec<DeliveryRow>("SELECT * FROM notify_deliveries WHERE notification_id = ? AND channel = ?", notificationId, channel).toArray()[0];
    return row ? deliveryFromRow(row) : null;
  }

  due(now: number, limit: number): Delivery[] {
    const next = this.nextDueAt();
    if (next === null || next > now) return [];
    return this.sql.exec<DeliveryRow>("SELECT * FROM notify_deliveries WHERE due_at <= ? ORDER BY due_at LIMIT ?", now, limit).toArray().map(deliveryFromRow);
  }

  /** Email deliveries due by `now`, oldest first. */
  dueEmails(now: number, limit: number): Delivery[] {
    return this.sql
      .exec<DeliveryRow>("SELECT * FROM notify_deliveries WHERE channel = 'email' AND due_at <= ? ORDER BY due_at LIMIT ?", now, limit)
      .toArray()
      .map(deliveryFromRow);
  }

  nextDueAt(): number | null {
    if (this.nextDueCache === undefined) this.nextDueCache = this.sql.exec<{ m: number | null }>("SELECT MIN(due_at) AS m FROM notify_deliveries").one().m;
    return this.nextDueCache;
  }

  postpone(d: Pick<Delivery, "notificationId" | "channel">, dueAt: number, attempts?: number, state?: DeliveryState): void {
    this.nextDueCache = undefined;
    this.sql.exec(
      "UPDATE notify_deliveries SET due_at = ?, attempts = COALESCE(?, attempts), state = COALESCE(?, state) WHERE notification_id = ? AND channel = ?",
      dueAt,
      attempts ?? null,
      state ? JSON.stringify(state) : null,
      d.notificationId,
      d.channel,
    );
  }

  finish(d: Pick<Delivery, "notificationId" | "channel">): void {
    this.nextDueCache = undefined;
    this.sql.exec("DELETE FROM notify_deliveries WHERE notification_id = ? AND channel = ?", d.notificationId, d.channel);
  }

  pendingCount(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM notify_deliveries").one().n;
  }
}
