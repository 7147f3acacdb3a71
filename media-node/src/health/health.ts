// Readiness: the node is ready only when everything a broadcast needs answers: the RTMP listener (broadcasters
// can connect), storage (segments can be stored) and the bus (events get out). Each probe is bounded by a
// timeout so a hung dependency makes /healthz say "not ready" instead of hanging the load balancer's check.

export type Probe = () => Promise<void>;

export interface HealthReport {
  ok: boolean;
  checks: Record<string, { ok: boolean; ms: number; error?: string }>;
}

export async function checkHealth(probes: Record<string, Probe>, timeoutMs: number): Promise<HealthReport> {
  const entries = await Promise.all(
    Object.entries(probes).map(async ([name, probe]) => {
      const started = Date.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          probe(),
          new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs))),
        ]);
        return [name, { ok: true, ms: Date.now() - started }] as const;
      } catch (error) {
        return [name, { ok: false, ms: Date.now() - started, error: error instanceof Error ? error.message : String(error) }] as const;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const checks = Object.fromEntries(entries);
  return { ok: entries.every(([, c]) => c.ok), checks };
}

/**
 * One probe run shared by every caller for `ttlMs`: concurrent checks wait for the same run, and a flood of
 * health checks costs at most one storage write and one bus and RTMP connection per `ttlMs`.
 */
export function cachedHealth(check: () => Promise<HealthReport>, ttlMs: number, now: () => number = Date.now): () => Promise<HealthReport> {
  let last: { at: number; report: Promise<HealthReport> } | undefined;
  return () => {
    if (last && now() - last.at < ttlMs) return last.report;
    const report = check();
    const entry = { at: now(), report };
    last = entry;
    // A run that threw is not kept: the next check probes again.
    report.catch(() => {
      if (last === entry) last = undefined;
    });
    if (ttlMs <= 0) last = undefined;
    return report;
  };
}
