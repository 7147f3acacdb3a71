// Exponential backoff with "equal jitter" (AWS architecture blog, "Exponential Backoff And Jitter"): the delay is
// uniform in [cap/2, cap] with cap = min(max, base * 2^(attempt-1)). The jitter spreads the retries of many
// senders that failed together (an edge or NATS restart) so they do not come back in one wave; the floor of
// cap/2 keeps a dead peer from being hammered by unlucky near-zero delays.

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /** [0,1) source, injectable for tests */
  random?: () => number;
}

/** Delay before retry number `attempt` (1 = first retry). */
export function backoffDelay(attempt: number, opts: BackoffOptions): number {
  const cap = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.floor(cap / 2 + (opts.random ?? Math.random)() * (cap / 2));
}
