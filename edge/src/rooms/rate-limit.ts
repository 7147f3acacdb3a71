// Per-connection token bucket for client frames. Pure (the caller passes the time), so it is testable
// without a socket. Buckets live in the room's memory only: after a hibernation wake a connection starts
// with a full bucket, which is fine because waking means it was idle.

export interface TokenBucket {
  tokens: number;
  /** ms timestamp of the last refill */
  at: number;
  /**
   * Abuse score: +1 per refused frame, -1 per accepted one. Not reset by one accepted frame, so a client
   * that keeps sending at several times the rate (a few frames get through as tokens trickle in) still
   * climbs to the close threshold, while one that backs off when told drifts back to 0.
   */
  strikes: number;
}

export type TakeResult = { ok: true } | { ok: false; retryAfterMs: number; strikes: number };

export function newBucket(burst: number, now: number): TokenBucket {
  return { tokens: burst, at: now, strikes: 0 };
}

/** Takes one token if there is one; otherwise says when the next one will be there. */
export function take(bucket: TokenBucket, now: number, ratePerS: number, burst: number): TakeResult {
  const elapsed = Math.max(0, now - bucket.at);
  bucket.tokens = Math.min(burst, bucket.tokens + (elapsed * ratePerS) / 1000);
  bucket.at = now;
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    bucket.strikes = Math.max(0, bucket.strikes - 1);
    return { ok: true };
  }
  bucket.strikes += 1;
  return { ok: false, retryAfterMs: Math.ceil(((1 - bucket.tokens) * 1000) / ratePerS), strikes: bucket.strikes };
}
