// Room limits and timings. Each is read from the Worker env (a wrangler var, or `--var` in tests) when set,
// else the default here. Values that do not parse as a positive number fall back to the default.

export interface RoomConfig {
  /** ROOM_MAX_CONNECTIONS (default 5000): open WebSockets per room; more are refused with 503 `room_full`. */
  maxConnections: number;
  /** ROOM_MAX_FRAME_BYTES (default 32768): largest client frame; larger ones close the socket with 1009. */
  maxFrameBytes: number;
  /** ROOM_RATE_PER_S (default 20): client frames per second each connection may send, sustained (token bucket refill). */
  ratePerS: number;
  /** ROOM_RATE_BURST (default 40): token bucket size, the burst a connection may send at once. */
  rateBurst: number;
  /** ROOM_RATE_STRIKES (default 20): net refused frames (refused minus accepted since) before the socket is closed with 1008. */
  rateStrikes: number;
  /** ROOM_STATE_MAX_BYTES (default 1024): largest per-user presence state (JSON bytes). */
  stateMaxBytes: number;
  /** ROOM_WELCOME_MESSAGES (default 50): chat messages in the `welcome` frame of a fresh join. */
  welcomeMessages: number;
  /** ROOM_RESUME_MAX (default 500): most messages replayed to a reconnecting client; past it: `refetch`. */
  resumeMax: number;
  /** ROOM_HISTORY_MAX (default 10000): chat messages kept per room; older ones are pruned. */
  historyMax: number;
  /** ROOM_FLUSH_MS (default 10): how long room-wide frames are coalesced before one `batch` frame goes out. */
  flushMs: number;
  /** ROOM_REACTION_FLUSH_MS (default 250): how often aggregated reaction counts are sent. */
  reactionFlushMs: number;
  /** ROOM_OUTBOX_FLUSH_MS (default 200): how often chat/presence events are handed to the outbox in one batch. */
  outboxFlushMs: number;
}

export const ROOM_DEFAULTS: RoomConfig = {
  maxConnections: 5000,
  maxFrameBytes: 32 * 1024,
  ratePerS: 20,
  rateBurst: 40,
  rateStrikes: 20,
  stateMaxBytes: 1024,
  welcomeMessages: 50,
  resumeMax: 500,
  historyMax: 10_000,
  flushMs: 10,
  reactionFlushMs: 250,
  outboxFlushMs: 200,
};

const ENV_NAMES: Record<keyof RoomConfig, string> = {
  maxConnections: "ROOM_MAX_CONNECTIONS",
  maxFrameBytes: "ROOM_MAX_FRAME_BYTES",
  ratePerS: "ROOM_RATE_PER_S",
  rateBurst: "ROOM_RATE_BURST",
  rateStrikes: "ROOM_RATE_STRIKES",
  stateMaxBytes: "ROOM_STATE_MAX_BYTES",
  welcomeMessages: "ROOM_WELCOME_MESSAGES",
  resumeMax: "ROOM_RESUME_MAX",
  historyMax: "ROOM_HISTORY_MAX",
  flushMs: "ROOM_FLUSH_MS",
  reactionFlushMs: "ROOM_REACTION_FLUSH_MS",
  outboxFlushMs: "ROOM_OUTBOX_FLUSH_MS",
};

/** Pure: the effective room config for an env (a plain record of strings, as vars arrive). */
export function roomConfig(env: object): RoomConfig {
  const vars = env as Record<string, unknown>;
  const out = { ...ROOM_DEFAULTS };
  for (const key of Object.keys(ENV_NAMES) as (keyof RoomConfig)[]) {
    const raw = vars[ENV_NAMES[key]];
    if (raw === undefined || raw === "") continue;
    const n = Number(raw);
    if (Number.isFinite(n) && n > 0) out[key] = n;
  }
  return out;
}
