// What to do with an event after one delivery attempt. Pure, so every branch is tested without processes.

export type AttemptOutcome =
  | { kind: "response"; status: number; body: string; retryAfter?: string | null }
  | { kind: "error"; message: string };

export type Decision =
  | { action: "ack" }
  | { action: "retry"; reason: string; /** the edge asked for at least this delay (Retry-After) */ minDelayMs?: number }
  | { action: "dead-letter"; reason: string };

/** Retry-After as seconds or an HTTP date, in ms from `nowMs`; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null | undefined, nowMs = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

export function classify(outcome: AttemptOutcome, retryStatuses: Set<number>): Decision {
  if (outcome.kind === "error") return { action: "retry", reason: outcome.message };
  const { status } = outcome;
  if (status >= 200 && status < 300) return { action: "ack" };
  const excerpt = outcome.body.slice(0, 500);
  const minDelayMs = retryAfterMs(outcome.retryAfter);
  const retry = (): Decision => ({ action: "retry", reason: `edge answered ${status}`, ...(minDelayMs !== undefined ? { minDelayMs } : {}) });
  if (status >= 500 || retryStatuses.has(status)) return retry();
  if (status >= 400) return { action: "dead-letter", reason: `edge refused it with ${status}: ${excerpt}` };
  // 1xx/3xx: the URL points somewhere unexpected (a redirect). Not the event's fault: keep it and retry.
  return retry();
}
