// One Durable Object per owner listing their streams, so `GET /streams` reads one small table instead of
// scanning every stream. Stream ids are ULID-based, so id order is creation order.
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env.ts";

export class StreamIndex extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS streams (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL)");
  }

  async add(id: string, createdAt: number): Promise<void> {
    this.ctx.storage.sql.exec("INSERT OR IGNORE INTO streams (id, created_at) VALUES (?, ?)", id, createdAt);
  }

  async remove(id: string): Promise<void> {
    this.ctx.storage.sql.exec("DELETE FROM streams WHERE id = ?", id);
  }

  /** Newest first; `before` is the cursor (the last id of the previous page). */
  async list(limit: number, before?: string): Promise<{ ids: string[]; next?: string }> {
    const rows = before
      ? this.ctx.storage.sql.exec<{ id: string }>("SELECT id FROM streams WHERE id < ? ORDER BY id DESC LIMIT ?", before, limit + 1).toArray()
      : this.ctx.storage.sql.exec<{ id: string }>("SELECT id FROM streams ORDER BY id DESC LIMIT ?", limit + 1).toArray();
    const ids = rows.slice(0, limit).map((r) => r.id);
    return rows.length > limit ? { ids, next: ids[ids.length - 1]! } : { ids };
  }

  async count(): Promise<number> {
    return this.ctx.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM streams").one().n;
  }
}
