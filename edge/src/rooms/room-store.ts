// A room's durable state in its Durable Object's SQLite storage: chat history, bans, room info.
// Everything here survives eviction and hibernation; nothing else in a room needs to.
import type { ChatMessage, RoomInfo } from "../../../shared/protocol/room.ts";

interface MessageRow extends Record<string, SqlStorageValue> {
  id: number;
  user_id: string;
  name: string | null;
  text: string;
  at: number;
  deleted: number;
}

function toMessage(row: MessageRow): ChatMessage {
  const m: ChatMessage = { id: row.id, userId: row.user_id, text: row.deleted ? "" : row.text, at: row.at };
  if (row.name !== null) m.name = row.name;
  if (row.deleted) m.deleted = true;
  return m;
}

export interface Ban {
  userId: string;
  by: string;
  reason?: string;
  at: number;
}

export type ResumeResult = { complete: true; messages: ChatMessage[] } | { complete: false; messages: ChatMessage[] };

export class RoomStore {
  private readonly sql: SqlStorage;
  /**
   * The room info as last read or written: every event a room takes reads it, and only this store writes it,
   * so it is parsed once per object life instead of once per event. Dropped by forgetInfo() when a transaction
   * that wrote it rolled back.
   */
  private cachedInfo: RoomInfo | undefined;

  constructor(storage: DurableObjectStorage) {
    this.sql = storage.sql;
    // AUTOINCREMENT: ids are never reused, even after pruning, so "the last id I saw" stays meaningful.
    this.sql.exec(`CREATE TABLE IF NOT EXISTS messages (
      id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, name TEXT, text TEXT NOT NULL,
      at INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0)`);
    this.sql.exec("CREATE TABLE IF NOT EXISTS bans (user_id TEXT PRIMARY KEY, by TEXT NOT NULL, reason TEXT, at INTEGER NOT NULL)");
    this.sql.exec("CREATE TABLE IF NOT EXISTS room_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
  }

  append(userId: string, name: string | undefined, text: string, at: number, historyMax: number): ChatMessage {
    const row = this.sql
      .exec<MessageRow>("INSERT INTO messages (user_id, name, text, at) VALUES (?, ?, ?, ?) RETURNING *", userId, name ?? null, text, at)
      .one();
    // Keep the newest `historyMax` on every append: a primary-key range, so it costs next to nothing (usually
    // one row or none). A counter of appends would live in memory and restart at every wake of a hibernating
    // room, so a quiet room that sleeps between messages would never reach it and grow without bound.
    this.prune(historyMax, row.id);
    return toMessage(row);
  }

  private prune(historyMax: number, newestId: number): void {
    this.sql.exec("DELETE FROM messages WHERE id <= ?", newestId - historyMax);
  }

  /** Up to `limit` messages with id > `after`, oldest first (handing the history over, page by page). */
  from(after: number, limit: number): ChatMessage[] {
    return this.sql.exec<MessageRow>("SELECT * FROM messages WHERE id > ? ORDER BY id LIMIT ?", after, limit).toArray().map(toMessage);
  }

  /**
   * Stores messages as they are, ids kept (a history handed over by the small room this room grew from).
   * A message already here is replaced. Ids continue after the highest one (AUTOINCREMENT follows explicit ids).
   */
  adoptMessages(messages: readonly ChatMessage[]): void {
    if (messages.length === 0) return;
    this.sql.exec(
      `INSERT INTO messages (id, user_id, name, text, at, deleted)
       SELECT json_extract(value, '$.id'), json_extract(value, '$.userId'), json_extract(value, '$.name'), json_extract(value, '$.text'),
              json_extract(value, '$.at'), CASE WHEN json_extract(value, '$.deleted') THEN 1 ELSE 0 END
       FROM json_each(?) WHERE true
       ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, name = excluded.name, text = excluded.text, at = excluded.at, deleted = excluded.deleted`,
      JSON.stringify(messages),
    );
  }

  /** The last `n` messages, oldest first. */
  latest(n: number): ChatMessage[] {
    return this.sql.exec<MessageRow>("SELECT * FROM messages ORDER BY id DESC LIMIT ?", n).toArray().reverse().map(toMessage);
  }

  /** A page of history: up to `limit` messages with id < `before` (all when undefined), oldest first. */
  page(before: number | undefined, limit: number): ChatMessage[] {
    const rows =
      before === undefined
        ? this.sql.exec<MessageRow>("SELECT * FROM messages ORDER BY id DESC LIMIT ?", limit)
        : this.sql.exec<MessageRow>("SELECT * FROM messages WHERE id < ? ORDER BY id DESC LIMIT ?", before, limit);
    return rows.toArray().reverse().map(toMessage);
  }

  /**
   * What a client that last saw message `since` missed: all of it when at most `max` messages and none were
   * pruned; otherwise `complete: false` with the latest `fallback` messages (the client refetches the gap).
   */
  after(since: number, max: number, fallback: number): ResumeResult {
    const rows = this.sql.exec<MessageRow>("SELECT * FROM messages WHERE id > ? ORDER BY id LIMIT ?", since, max + 1).toArray();
    const oldest = this.sql.exec<{ id: number | null }>("SELECT MIN(id) AS id FROM messages").one().id;
    const pruned = oldest !== null && since + 1 < oldest && rows.length > 0;
    if (rows.length > max || pruned) return { complete: false, messages: this.latest(fallback) };
    return { complete: true, messages: rows.map(toMessage) };
  }

  /** Tombstones a message (the id stays so resumes and pages keep their order). False if there is none. */
  delete(id: number): boolean {
    const res = this.sql.exec("UPDATE messages SET deleted = 1, text = '' WHERE id = ? AND deleted = 0", id);
    if (res.rowsWritten > 0) return true;
    return this.sql.exec("SELECT 1 FROM messages WHERE id = ?", id).toArray().length > 0;
  }

  ban(ban: Ban): void {
    this.sql.exec(
      "INSERT INTO bans (user_id, by, reason, at) VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET by = excluded.by, reason = excluded.reason, at = excluded.at",
      ban.userId,
      ban.by,
      ban.reason ?? null,
      ban.at,
    );
  }

  unban(userId: string): boolean {
    return this.sql.exec("DELETE FROM bans WHERE user_id = ?", userId).rowsWritten > 0;
  }

  /** Every ban (handed over when the room grows big). */
  bans(): Ban[] {
    return this.sql
      .exec<{ user_id: string; by: string; reason: string | null; at: number }>("SELECT user_id, by, reason, at FROM bans")
      .toArray()
      .map((r) => ({ userId: r.user_id, by: r.by, at: r.at, ...(r.reason !== null ? { reason: r.reason } : {}) }));
  }

  isBanned(userId: string): boolean {
    return this.sql.exec("SELECT 1 FROM bans WHERE user_id = ?", userId).toArray().length > 0;
  }

  /** The room info (frozen: shared by every caller until the next setInfo). */
  info(roomId: string): RoomInfo {
    if (this.cachedInfo?.roomId === roomId) return this.cachedInfo;
    const row = this.sql.exec<{ value: string }>("SELECT value FROM room_meta WHERE key = 'info'").toArray()[0];
    this.cachedInfo = Object.freeze(row ? { ...(JSON.parse(row.value) as RoomInfo), roomId } : { roomId });
    return this.cachedInfo;
  }

  setInfo(info: RoomInfo): void {
    this.cachedInfo = undefined;
    this.sql.exec("INSERT INTO room_meta (key, value) VALUES ('info', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", JSON.stringify(info));
    this.cachedInfo = Object.freeze({ ...info });
  }

  /** Call when a transaction that may have written the room info failed: the next info() reads storage again. */
  forgetInfo(): void {
    this.cachedInfo = undefined;
  }

  /** Whether this (small) room has grown into a big room: its chat lives in a coordinator now. Never undone. */
  grown(): boolean {
    return this.sql.exec("SELECT 1 FROM room_meta WHERE key = 'grown'").toArray().length > 0;
  }

  setGrown(at: number): void {
    this.sql.exec("INSERT INTO room_meta (key, value) VALUES ('grown', ?) ON CONFLICT (key) DO NOTHING", String(at));
  }
}
