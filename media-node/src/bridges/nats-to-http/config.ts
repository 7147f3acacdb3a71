// Settings of the NATS -> HTTP bridge (`node media-node/src/bridges/nats-to-http/main.ts`).
// Every setting: env var, default, meaning. Read and checked at start-up; a bad value stops the process.

import { MAX_BATCH_EVENTS } from "../../../../shared/batch.ts";
import { busSettings } from "../../bus/config.ts";
import { hostSetting, intSetting, portSetting, readSettings, secretsSetting, type Setting, type SettingsOf, stringSetting, urlSetting } from "../../bus/settings.ts";

function listSetting(env: string, def: string[], doc: string, item: RegExp): Setting<string[]> {
  return {
    env,
    doc,
    default: def,
    parse(raw) {
      const list = raw.split(/[\s,]+/).filter((s) => s.length > 0);
      const bad = list.find((s) => !item.test(s));
      if (bad !== undefined) throw new Error(`'${bad}' must match ${item}`);
      return list;
    },
  };
}

export const natsToHttpSettings = {
  natsUrl: busSettings.natsUrl,
  stream: busSettings.stream,
  deadLetterStream: busSettings.deadLetterStream,
  duplicateWindowS: busSettings.duplicateWindowS,
  maxAgeS: busSettings.maxAgeS,
  /** EDGE_EVENTS_URL (default http://127.0.0.1:8787/hooks/events): the edge's signed event ingress. */
  edgeUrl: urlSetting("EDGE_EVENTS_URL", "http://127.0.0.1:8787/hooks/events", "the edge's event ingress URL", ["http:", "https:"]),
  /**
   * EDGE_INGRESS_SECRET (required; no default): Standard Webhooks secret(s) to sign with. Several, comma
   * separated, during a rotation: every request carries one signature per secret and the edge accepts any.
   */
  secrets: secretsSetting("EDGE_INGRESS_SECRET", "Standard Webhooks secret(s) shared with the edge's ingress"),
  /** BRIDGE_CONSUMER (default edge-bridge): the durable consumer every replica shares (each event goes to one). */
  consumer: stringSetting("BRIDGE_CONSUMER", "edge-bridge", "durable JetStream consumer name", /^[A-Za-z0-9_-]{1,64}$/),
  /**
   * BRIDGE_CONCURRENCY (default 1024): events one replica holds at most (queued for a batch, posting, or waiting
   * to retry); it pulls no more from JetStream beyond it. Well above BRIDGE_MAX_REQUESTS x BRIDGE_BATCH_MAX, so
   * under a backlog the batcher has events of the same subject to put together (fewer object calls at the edge:
   * ~4,000 events/s locally against ~1,000 with 256). With BRIDGE_BATCH_MAX=1 every held event is a POST of its own, all in parallel: lower it
   * there (64 was the default before batching).
   */
  concurrency: intSetting("BRIDGE_CONCURRENCY", 1024, "events held per replica", { min: 1, max: 4096 }),
  /**
   * BRIDGE_BATCH_MAX (default 100, at most 100 = shared/batch.ts MAX_BATCH_EVENTS): events sent in one signed
   * POST (the batch form, `application/vnd.pulsecast.batch+json`). The edge pays one Durable Object call and
   * commit per request, so batching is what lets it keep up. 1 = one event per request in the plain single-event
   * form, for an edge that does not take batches. A batch that happens to hold one event is sent in single form.
   */
  batchMax: intSetting("BRIDGE_BATCH_MAX", 100, "events per POST (1 = single-event form)", { min: 1, max: MAX_BATCH_EVENTS }),
  /**
   * BRIDGE_BATCH_LINGER_MS (default 10): how long the first event of a batch waits for more before the batch is
   * sent anyway; a full batch goes at once. Each request costs the edge far more than each event, so a short
   * wait pays for itself under load: measured with `npm run bench:bus` at a steady 2,000 events/s, 2 ms gave
   * ~11 events per POST and p99 ~195 ms, 10 ms ~22 per POST and p99 ~143 ms, 20 ms p99 ~135 ms. A lone event
   * on a quiet bus waits at most this long.
   */
  batchLingerMs: intSetting("BRIDGE_BATCH_LINGER_MS", 10, "wait for more events before sending a partial batch, ms", { min: 0, max: 1000 }),
  /**
   * BRIDGE_MAX_REQUESTS (default 4): batch POSTs one replica has in flight at once. While they are out, new
   * events queue and leave together when one returns (group commit): batches grow with the load and a light
   * load goes at once. Not used with BRIDGE_BATCH_MAX=1, where each event is its own request as before.
   */
  maxRequests: intSetting("BRIDGE_MAX_REQUESTS", 4, "batch POSTs in flight per replica", { min: 1, max: 1024 }),
  /**
   * BRIDGE_MAX_ACK_PENDING (default 4096): delivered-but-unacked events across all replicas; JetStream stops
   * handing out more beyond it. Keep it >= replicas x BRIDGE_CONCURRENCY.
   */
  maxAckPending: intSetting("BRIDGE_MAX_ACK_PENDING", 4096, "unacked events across replicas", { min: 1 }),
  /**
   * BRIDGE_ACK_WAIT_MS (default 30000): an event whose replica died (no ack, no progress signal for this long)
   * is redelivered to another replica. Live handlers signal progress, so only dead ones hit it.
   */
  ackWaitMs: intSetting("BRIDGE_ACK_WAIT_MS", 30_000, "JetStream ack wait, ms", { min: 1000, max: 3_600_000 }),
  /** BRIDGE_REQUEST_TIMEOUT_MS (default 10000): one POST to the edge; a timeout is retried. Must be < BRIDGE_ACK_WAIT_MS. */
  requestTimeoutMs: intSetting("BRIDGE_REQUEST_TIMEOUT_MS", 10_000, "edge request timeout, ms", { min: 100 }),
  /** BRIDGE_RETRY_BASE_MS (default 100): first retry delay; doubles each retry, with jitter. */
  retryBaseMs: intSetting("BRIDGE_RETRY_BASE_MS", 100, "first retry delay, ms", { min: 1 }),
  /** BRIDGE_RETRY_MAX_MS (default 10000): retry delays stop growing here (also capped at half the ack wait). */
  retryMaxMs: intSetting("BRIDGE_RETRY_MAX_MS", 10_000, "largest retry delay, ms", { min: 1 }),
  /**
   * BRIDGE_HOLD_MS (default 30000): how long an event is retried in place, keeping its slot, before it is handed
   * back to JetStream with a delay (nak) so other events get a turn. Holding keeps order and stops a down edge
   * from being hammered with every backlog event; handing back stops one bad event from blocking a slot forever.
   */
  holdMs: intSetting("BRIDGE_HOLD_MS", 30_000, "retry in place this long before nak with delay, ms", { min: 0 }),
  /**
   * BRIDGE_RETRY_STATUSES (default 401,403,408,425,429): 4xx answers retried like 5xx instead of dead-lettered.
   * 401/403 mean a secret mismatch (a rotation in progress, a misconfiguration): the event is fine, so it waits.
   * Any other 4xx is permanent: the event goes to `deadletter.<type>` with the reason, then is acked.
   * For a batch the same statuses apply to the request as a whole (every event retried); any other 4xx on a
   * whole batch is not held against its events: they are sent again one by one (see classify-batch.ts).
   * Inside a 200 batch answer, each event's `rejected` is permanent and `failed` is retried.
   */
  retryStatuses: listSetting("BRIDGE_RETRY_STATUSES", ["401", "403", "408", "425", "429"], "4xx statuses to retry", /^4\d\d$/),
  /**
   * BRIDGE_SKIP_SOURCES (default edge): events whose `source` is one of these (or starts with `<it>/`) are acked
   * without posting: they came from the edge through the HTTP -> NATS bridge, and sending them back would loop.
   */
  skipSources: listSetting("BRIDGE_SKIP_SOURCES", ["edge"], "event sources never posted to the edge", /^[A-Za-z0-9_./-]{1,256}$/),
  /** METRICS_HOST (default 127.0.0.1): where /metrics (Prometheus) and /healthz listen. */
  metricsHost: hostSetting("METRICS_HOST", "127.0.0.1", "metrics listen address"),
  /** METRICS_PORT (default 8789; 0 = any free port, printed at start): Prometheus metrics and health. */
  metricsPort: portSetting("METRICS_PORT", 8789, "metrics listen port"),
} as const;

export type NatsToHttpConfig = SettingsOf<typeof natsToHttpSettings> & { retryStatusSet: Set<number> };

export function readNatsToHttpConfig(env?: Record<string, string | undefined>): NatsToHttpConfig {
  const cfg = readSettings(natsToHttpSettings, env);
  if (cfg.requestTimeoutMs >= cfg.ackWaitMs) {
    throw new Error(`BRIDGE_REQUEST_TIMEOUT_MS (${cfg.requestTimeoutMs}) must be below BRIDGE_ACK_WAIT_MS (${cfg.ackWaitMs}), or every slow POST is redelivered`);
  }
  return { ...cfg, retryStatusSet: new Set(cfg.retryStatuses.map(Number)) };
}
