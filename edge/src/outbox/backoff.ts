// How long the outbox waits before trying the media side again after a failed delivery.
//
// Exponential so a media side that is down for minutes costs a handful of alarms, not thousands; capped so it
// is picked up within OUTBOX_MAX_DELAY_MS of coming back; jittered so many outbox shards that failed together
// do not hit the bridge in lockstep when it returns.

/** First retry delay. Not configurable by env: a constant keeps every shard's behaviour predictable. */
export const OUTBOX_BASE_DELAY_MS = 500;
/** Upper bound of a retry delay (a recovered bridge is found within this long). */
export const OUTBOX_MAX_DELAY_MS = 60_000;
/** +/- fraction of random spread applied to each delay. */
export const OUTBOX_JITTER = 0.2;

/**
 * Delay before attempt number `failures + 1`, given `failures` consecutive failures so far (>= 1).
 * `random` is injectable so the curve can be tested exactly.
 */
export function retryDelayMs(failures: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.min(failures - 1, 30));
  const base = Math.min(OUTBOX_MAX_DELAY_MS, OUTBOX_BASE_DELAY_MS * 2 ** exponent);
  const spread = base * OUTBOX_JITTER * (random() * 2 - 1);
  return Math.max(1, Math.round(Math.min(OUTBOX_MAX_DELAY_MS, base + spread)));
}
