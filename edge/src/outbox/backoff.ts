// How long the outbox waits before trying the media side again after a failed delivery.
//
// Exponential so a media side that is down for minutes costs a handful of alarms, not thousands; capped so it
// is picked up within the cap of coming back; jittered so many outbox shards that failed together do not hit
// the bridge in lockstep when it returns. Base and cap come from config.ts (OUTBOX_RETRY_BASE_MS / _MAX_MS).

import { OUTBOX_DEFAULTS } from "./config.ts";

/** +/- fraction of random spread applied to each delay. */
export const OUTBOX_JITTER = 0.2;

/**
 * Delay before attempt number `failures + 1`, given `failures` consecutive failures so far (>= 1).
 * `random` is injectable so the curve can be tested exactly.
 */
export function retryDelayMs(
  failures: number,
  { retryBaseMs, retryMaxMs }: { retryBaseMs: number; retryMaxMs: number } = OUTBOX_DEFAULTS,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, Math.min(failures - 1, 30));
  const base = Math.min(retryMaxMs, retryBaseMs * 2 ** exponent);
  const spread = base * OUTBOX_JITTER * (random() * 2 - 1);
  return Math.max(1, Math.round(Math.min(retryMaxMs, base + spread)));
}
