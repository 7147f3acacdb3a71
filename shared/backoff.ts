// Exponential backoff with jitter, one implementation for every retry loop (edge outboxes, media node bus,
// bridges, uploads). The delay before retry `attempt` (1 = first retry) grows as base * 2^(attempt-1), capped at
// max, so a peer that is down for minutes costs a handful of attempts, and one that comes back is found within
// the cap. The jitter spreads the retries of many senders that failed together so they do not return in lockstep.
// Web-standard only: runs in workerd and Node.

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /**
   * How the delay is spread around the exponential curve:
   * - "equal" (default): uniform in [cap/2, cap]; the floor keeps a dead peer from unlucky near-zero delays.
   * - a fraction f: uniform in cap * (1 +/- f), never past maxMs.
   */
  jitter?: "equal" | number;
  /** [0,1) source, injectable so the curve can be tested exactly */
  random?: () => number;
}

/** The un-jittered delay before retry `attempt`: min(maxMs, baseMs * 2^(attempt-1)). */
export function backoffCap(attempt: number, opts: Pick<BackoffOptions, "baseMs" | "maxMs">): number {
  return Math.min(opts.maxMs, opts.baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
}

/** Delay in ms before retry number `attempt` (1 = first retry); always at least 1 when baseMs is. */
export function backoffDelay(attempt: number, opts: BackoffOptions): number {
  const cap = backoffCap(attempt, opts);
  const r = (opts.random ?? Math.random)();
  const jitter = opts.jitter ?? "equal";
  if (jitter === "equal") return Math.floor(cap / 2 + r * (cap / 2));
  const spread = cap * jitter * (r * 2 - 1);
  return Math.max(1, Math.round(Math.min(opts.maxMs, cap + spread)));
}
