// The inbox's notifications in its Durable Object's SQLite storage. Synchronous SQL only, so a caller can
// run an insert inside AppliedLedger.applyOnce (the event id and the notification commit together).
import { DEFAULT_PAGE_LIMIT, type InboxNotification, type JsonData, type InboxPage, type ListRequest, MAX_PAGE_LIMIT, type ReadRequest } from "../../../shared/protocol/inbox.ts";

/** What an event turns into before the store gives it a seq and a time. */
export type NewNotification = Omit<InboxNotification, "seq" | "at" | "read">;

type Row = {
  seq: number;
  id: string;
  kind: string;
  title: string;
  body: string | null;
  url: string | null;
  data: string | null;
  event_id: string;
  at: number;
  read: number;
};

/** What a mark-read changed, and how every device should apply it. */
export interface MarkReadOutcome {
  marked: number;
  ids?: string[];
  upTo?: number;
}

function fromRow(row: Row): InboxNotification {
  const n: InboxNotification = { id: row.id, seq: row.seq, kind: row.kind, title: row.title, at: row.at, read: row.read === 1, eventId: row.event_id };
  if (row.body !== null) n.body = row.body;
  if (row.url !== null) n.url = row.url;
  if (row.data !== null) n.data = JSON.parse(row.data) as JsonData;
  return n;
}

export class NotificationStore {
  private readonly sql: SqlStorage;
  readonly maxStored: number;
  /**
   * How many are kept, once counted (only this store adds or removes rows); undefined until then. Never below the
   * truth: an insert whose transaction rolls back leaves it high, so only a real count decides what to delete.
   */
  private stored: number | undefined;

  constructor(storage: DurableObjectStorage, maxStored: number) {
    this.sql = storage.sql;
    this.maxStored = maxStored;
    // AUTOINCREMENT: a seq is never reused after pruning, so "read up to seq N" can never cover a newer one.
    this.sql.exec(`CREATE TABLE IF NOT EXISTS notifications (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      kind TEXT NOT NULL,
      title TEXT NOT NULL,
      body TEXT,
      url TEXT,
      data TEXT,
      event_id TEXT NOT NULL,
      at INTEGER NOT NULL,
      read INTEGER NOT NULL DEFAULT 0
    )`);
    this.sql.exec("CREATE INDEX IF NOT EXISTS notifications_read_seq ON notifications (read, seq)");
  }

  /**
   * Stores a notification; returns it with its seq, or null when one with the same id is already kept. Does not
   * bound the table: call `prune()` once after a batch of inserts (one count per batch, not per notification).
   */
  insert(n: NewNotification, now = Date.now()): InboxNotification | null {
    const inserted = this.sql
      .exec<Row>(
        `INSERT INTO notifications (id, kind, title, body, url, data, event_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO NOTHING RETURNING *`,
        n.id,
        n.kind,
        n.title,
        n.body ?? null,
        n.url ?? null,
        n.data === undefined ? null : JSON.stringify(n.data),
        n.eventId,
        now,
      )
      .toArray();
    const row = inserted[0];
    if (row && this.stored !== undefined) this.stored++;
    return row ? fromRow(row) : null;
  }

  /** Drops notifications past INBOX_MAX_STORED: the oldest read ones first, then the oldest unread. */
  prune(): void {
    // Counted once per life of the object, then followed: a count per batch would cost as much as the insert.
    if (this.stored !== undefined && this.stored <= this.maxStored) return;
    const over = this.count() - this.maxStored;
    this.stored = over > 0 ? undefined : over + this.maxStored; // after a delete, counted again (it may roll back)
    if (over <= 0) return;
    // Oldest read ones first (ordered by read DESC = 1 before 0), then the oldest unread.
    this.sql.exec("DELETE FROM notifications WHERE seq IN (SELECT seq FROM notifications ORDER BY read DESC, seq ASC LIMIT ?)", over);
  }

  count(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM notifications").one().n;
  }

  unreadCount(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM notifications WHERE read = 0").one().n;
  }

  /** The kept notifications among `ids` (any order); ids no longer kept are absent. */
  byIds(ids: readonly string[]): InboxNotification[] {
    if (ids.length === 0) return [];
    return this.sql.exec<Row>("SELECT n.* FROM notifications n JOIN json_each(?) j ON n.id = j.value", JSON.stringify(ids)).toArray().map(fromRow);
  }

  /** Newest first. */
  recentUnread(limit: number): InboxNotification[] {
    return this.sql.exec<Row>("SELECT * FROM notifications WHERE read = 0 ORDER BY seq DESC LIMIT ?", limit).toArray().map(fromRow);
  }

  /** Newest first, seq < before. */
  page(req: ListRequest = {}): InboxPage {
    const limit = Math.min(req.limit ?? DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT);
    const before = req.before ?? Number.MAX_SAFE_INTEGER;
    // One extra row tells whether there is a next page without a second query.
    const rows = this.sql
      .exec<Row>(`SELECT * FROM notifications WHERE seq < ? ${req.unreadOnly ? "AND read = 0" : ""} ORDER BY seq DESC LIMIT ?`, before, limit + 1)
      .toArray();
    const notifications = rows.slice(0, limit).map(fromRow);
    const page: InboxPage = { notifications, unread: this.unreadCount() };
    const last = notifications[notifications.length - 1];
    if (rows.length > limit && last) page.nextBefore = last.seq;
    return page;
  }

  markRead(req: ReadRequest): MarkReadOutcome {
    if (req.ids) {
      const ids = [...new Set(req.ids)];
      const placeholders = ids.map(() => "?").join(",");
      const marked = this.sql.exec(`UPDATE notifications SET read = 1 WHERE read = 0 AND id IN (${placeholders}) RETURNING seq`, ...ids).toArray().length;
      return { marked, ids };
    }
    const upTo = req.all ? this.sql.exec<{ m: number | null }>("SELECT MAX(seq) AS m FROM notifications").one().m : (req.upTo ?? null);
    if (upTo === null) return { marked: 0 };
    // RETURNING counts rows changed (cursor.rowsWritten would also count index writes).
    const marked = this.sql.exec("UPDATE notifications SET read = 1 WHERE read = 0 AND seq <= ? RETURNING seq", upTo).toArray().length;
    return { marked, upTo };
  }
}
