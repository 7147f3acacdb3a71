// Counters of what the ingress did with the events it received, for tests, the bus benchmark and operators
// (GET /internal/bus/stats).
//
// Kept in memory per isolate, like a Prometheus counter is per process: free on the hot path, reset when the
// isolate restarts. Under `wrangler dev` there is one isolate, so the numbers are the whole edge's; in
// production each isolate reports its own share. The durable truth of "applied once" is the target objects'
// AppliedLedger; `appliedTwice` cross-checks it: an id that came back `applied` twice in this isolate would be
// a broken exactly-once guarantee and should always read 0.

import type { EventType } from "../../../shared/events/index.ts";

/** How many latencies are kept for the percentiles (a ring: the most recent ones). */
const LATENCY_SAMPLES = 1 << 16;
/**
 * How many applied ids are remembered for the appliedTwice check (oldest forgotten first): a few MB of the
 * isolate's 128 MB, and more than a benchmark run (2 x 10,000 events) applies.
 */
const REMEMBERED_IDS = 50_000;

export type Outcome = "applied" | "duplicate" | "ignored";

export interface StatsSnapshot {
  since: string;
  /** requests (a batch counts once; its events are counted in the fields below, one by one) */
  received: number;
  applied: number;
  duplicates: number;
  ignored: number;
  /**
   * refused requests by error code (bad-signature, stale-timestamp, malformed, unknown-type, too-large, ...),
   * plus each event of a batch rejected on its own (by its result's code)
   */
  rejected: Record<string, number>;
  /** events whose effect could not be applied (a 503, or a batch result `failed`; the bridge retries) */
  failed: number;
  appliedTwice: number;
  byType: Partial<Record<EventType, { applied: number; duplicates: number; ignored: number }>>;
  /** ms from the event's `time` to its effect being applied, over the most recent LATENCY_SAMPLES events */
  latencyMs: Percentiles;
  /**
   * ms from the request reaching the ingress to the event's effect being applied (the edge's own share of
   * latencyMs: the rest is the media side, NATS and the bridge), over the same events
   */
  edgeLatencyMs: Percentiles;
}

export interface Percentiles {
  count: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

/** A ring of the most recent LATENCY_SAMPLES values and their percentiles. */
class LatencyRing {
  private values = new Float64Array(LATENCY_SAMPLES);
  private count = 0;

  add(ms: number): void {
    this.values[this.count++ % LATENCY_SAMPLES] = Math.max(0, ms);
  }

  percentiles(): Percentiles {
    const n = Math.min(this.count, LATENCY_SAMPLES);
    const sorted = this.values.slice(0, n).sort();
    const pick = (q: number) => (n === 0 ? null : sorted[Math.min(n - 1, Math.ceil(q * n) - 1)]!);
    return { count: n, p50: pick(0.5), p99: pick(0.99), max: n === 0 ? null : sorted[n - 1]! };
  }

  clear(): void {
    this.count = 0;
  }
}

export class IngressStats {
  private since = new Date();
  private received = 0;
  private counts = { applied: 0, duplicates: 0, ignored: 0, failed: 0, appliedTwice: 0 };
  private rejected: Record<string, number> = {};
  private byType: StatsSnapshot["byType"] = {};
  private latencies = new LatencyRing();
  private edgeLatencies = new LatencyRing();
  private appliedIds = new Set<string>();

  receivedRequest(): void {
    this.received++;
  }

  rejectedRequest(code: string): void {
    this.rejected[code] = (this.rejected[code] ?? 0) + 1;
  }

  failedEvent(): void {
    this.counts.failed++;
  }

  /**
   * Records what happened to a valid event. `eventTime` is the envelope's ISO `time`; `receivedAt` (unix ms) is
   * when the request carrying it reached the ingress.
   */
  handled(id: string, type: EventType, outcome: Outcome, eventTime: string, receivedAt?: number, now = Date.now()): void {
    const perType = (this.byType[type] ??= { applied: 0, duplicates: 0, ignored: 0 });
    // Heartbeats are the fleet's pulse, not events anyone waits for: counted under their type only, so the totals
    // and the latency percentiles stay those of the events (a node's heartbeats would otherwise fill them).
    if (type === "node.heartbeat") {
      perType[outcome === "duplicate" ? "duplicates" : outcome]++;
      return;
    }
    if (outcome === "applied") {
      this.counts.applied++;
      perType.applied++;
      if (this.appliedIds.has(id)) this.counts.appliedTwice++;
      else this.remember(id);
      const at = Date.parse(eventTime);
      if (Number.isFinite(at)) this.latencies.add(now - at);
      if (receivedAt !== undefined) this.edgeLatencies.add(now - receivedAt);
    } else if (outcome === "duplicate") {
      this.counts.duplicates++;
      perType.duplicates++;
    } else {
      this.counts.ignored++;
      perType.ignored++;
    }
  }

  private remember(id: string): void {
    if (this.appliedIds.size >= REMEMBERED_IDS) {
      const oldest = this.appliedIds.values().next().value;
      if (oldest !== undefined) this.appliedIds.delete(oldest);
    }
    this.appliedIds.add(id);
  }

  snapshot(): StatsSnapshot {
    return {
      since: this.since.toISOString(),
      received: this.received,
      applied: this.counts.applied,
      duplicates: this.counts.duplicates,
      ignored: this.counts.ignored,
      rejected: { ...this.rejected },
      failed: this.counts.failed,
      appliedTwice: this.counts.appliedTwice,
      byType: structuredClone(this.byType),
      latencyMs: this.latencies.percentiles(),
      edgeLatencyMs: this.edgeLatencies.percentiles(),
    };
  }

  /** Zeroes every counter (between benchmark phases). The appliedTwice memory is kept: it spans phases. */
  reset(): void {
    this.since = new Date();
    this.received = 0;
    this.counts = { applied: 0, duplicates: 0, ignored: 0, failed: 0, appliedTwice: 0 };
    this.rejected = {};
    this.byType = {};
    this.latencies.clear();
    this.edgeLatencies.clear();
  }
}

/** The isolate's ingress counters. */
export const ingressStats = new IngressStats();
