// Outbox timings. Each is read from the Worker env (a wrangler var, or `--var` in tests) when set, else the
// default here. A value that does not parse as a positive integer falls back to the default.

import { MAX_BATCH_EVENTS } from "../../../shared/batch.ts";

export interface OutboxConfig {
  /** OUTBOX_RETRY_BASE_MS (default 500): delay before the first retry after a failed delivery; doubles per failure. */
  retryBaseMs: number;
  /** OUTBOX_RETRY_MAX_MS (default 60000): longest delay between retries, so a recovered bridge is found within it. */
  retryMaxMs: number;
  /** OUTBOX_DELIVERY_TIMEOUT_MS (default 10000): how long one POST to the bridge may take before it counts as failed. */
  deliveryTimeoutMs: number;
  /**
   * OUTBOX_BATCH_MAX (default 100, at most MAX_BATCH_EVENTS = 100): how many pending events one POST to the
   * bridge carries, in the batch format of shared/batch.ts (one signature, per-event results). Batches are also
   * kept under MAX_BATCH_BYTES. 1 sends every event on its own in the single-event form (for a bridge that does
   * not take batches).
   */
  batchMax: number;
}

export const OUTBOX_DEFAULTS: OutboxConfig = { retryBaseMs: 500, retryMaxMs: 60_000, deliveryTimeoutMs: 10_000, batchMax: MAX_BATCH_EVENTS };

/** The env vars above, as the Worker sees them (strings, all optional). */
export interface OutboxVars {
  OUTBOX_RETRY_BASE_MS?: string;
  OUTBOX_RETRY_MAX_MS?: string;
  OUTBOX_DELIVERY_TIMEOUT_MS?: string;
  OUTBOX_BATCH_MAX?: string;
}

function positiveInt(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value !== undefined && value !== "" && Number.isInteger(n) && n > 0 ? n : fallback;
}

export function outboxConfig(env: OutboxVars): OutboxConfig {
  const retryBaseMs = positiveInt(env.OUTBOX_RETRY_BASE_MS, OUTBOX_DEFAULTS.retryBaseMs);
  return {
    retryBaseMs,
    // A cap below the base would make the curve meaningless: it is at least the base.
    retryMaxMs: Math.max(retryBaseMs, positiveInt(env.OUTBOX_RETRY_MAX_MS, OUTBOX_DEFAULTS.retryMaxMs)),
    deliveryTimeoutMs: positiveInt(env.OUTBOX_DELIVERY_TIMEOUT_MS, OUTBOX_DEFAULTS.deliveryTimeoutMs),
    // More than a batch may hold would be refused whole by the bridge: capped, not an error.
    batchMax: Math.min(MAX_BATCH_EVENTS, positiveInt(env.OUTBOX_BATCH_MAX, OUTBOX_DEFAULTS.batchMax)),
  };
}
