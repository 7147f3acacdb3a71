// Settings of the per-user inbox. Each comes from a Worker var (wrangler.toml [vars], `wrangler dev --var`,
// or the dashboard) and falls back to the default below when unset or not a positive integer.
import type { Env } from "../env.ts";

/** The vars this module reads, on top of the Worker's Env (all optional strings, as Workers vars are). */
export interface InboxVars {
  INBOX_MAX_CONNECTIONS?: string;
  INBOX_MAX_FRAME_BYTES?: string;
  INBOX_WELCOME_LIMIT?: string;
  INBOX_MAX_STORED?: string;
  INBOX_RATE_PER_S?: string;
  INBOX_RATE_STRIKES?: string;
}

export interface InboxConfig {
  /**
   * INBOX_MAX_CONNECTIONS (default 16): open WebSockets per user (tabs + devices). One more is told
   * `too_many_connections` and closed with 1008, so a leaking client cannot pin the object's memory.
   */
  maxConnections: number;
  /**
   * INBOX_MAX_FRAME_BYTES (default 4096): largest client frame. Client frames are tiny (mark-read of up to
   * 100 ids fits), so anything larger is a bug or abuse; it gets a `frame_too_large` error frame.
   */
  maxFrameBytes: number;
  /**
   * INBOX_WELCOME_LIMIT (default 20, at most 100): unread notifications in the `welcome` frame, newest first.
   * More than that are paged with `list` / GET /inbox (`welcome.more` says so).
   */
  welcomeLimit: number;
  /**
   * INBOX_MAX_STORED (default 1000): notifications kept per user. Past it, the oldest READ ones go first;
   * only when every kept one is unread does the oldest unread go. Bounds one user's storage.
   */
  maxStored: number;
  /**
   * INBOX_RATE_PER_S (default 10): client frames per second per connection (token bucket, burst twice
   * that). A frame over it gets `rate_limited` with retryAfterMs; INBOX_RATE_STRIKES refused frames in a
   * row (net of accepted ones) close the socket with 1008. Clients send a mark-read or a page request now
   * and then; a flood is a bug or abuse, and each frame costs a SQLite query.
   */
  ratePerS: number;
  /** INBOX_RATE_STRIKES (default 20): see ratePerS. */
  rateStrikes: number;
}

function positiveInt(value: string | undefined, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  return value !== undefined && value !== "" && Number.isInteger(n) && n > 0 ? Math.min(n, max) : fallback;
}

export function inboxConfig(env: Env): InboxConfig {
  const vars = env as Env & InboxVars;
  return {
    maxConnections: positiveInt(vars.INBOX_MAX_CONNECTIONS, 16),
    maxFrameBytes: positiveInt(vars.INBOX_MAX_FRAME_BYTES, 4096),
    welcomeLimit: positiveInt(vars.INBOX_WELCOME_LIMIT, 20, 100),
    maxStored: positiveInt(vars.INBOX_MAX_STORED, 1000),
    ratePerS: positiveInt(vars.INBOX_RATE_PER_S, 10),
    rateStrikes: positiveInt(vars.INBOX_RATE_STRIKES, 20),
  };
}
