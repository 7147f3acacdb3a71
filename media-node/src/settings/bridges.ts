// Settings of the two bridge processes between NATS and the edge.

import { MAX_BATCH_BYTES, MAX_BATCH_EVENTS } from "../../../shared/batch.ts";
import { MAX_EVENT_BYTES } from "../../../shared/envelope.ts";
import { DEFAULT_TOLERANCE_S } from "../../../shared/signing/webhooks.ts";
import { int, list, port, secrets, text, type SettingsOf, url } from "../../../shared/settings/settings.ts";

const host = (env: string, doc: string) => text(env, "127.0.0.1", doc, { pattern: /^[A-Za-z0-9.:\-[\]]+$/ });
const matching = (re: RegExp) => (s: string) => {
  if (!re.test(s)) throw new Error(`must match ${re}`);
  return s;
};

/** HTTP -> NATS bridge: the edge's signed events into JetStream. */
export const httpToNatsSettings = {
  host: host("HTTP_TO_NATS_HOST", "listen address of POST /events; put it behind TLS (or a tunnel) when the edge is remote"),
  port: port("HTTP_TO_NATS_PORT", 8788, "listen port (0 = any free port, printed at start)"),
  secrets: secrets("BRIDGE_INGRESS_SECRET", "Standard Webhooks secret(s) the edge's outbox signs with; several, comma separated, during a rotation; no default"),
  toleranceS: int("BRIDGE_TIMESTAMP_TOLERANCE_S", DEFAULT_TOLERANCE_S, "a webhook-timestamp older or newer than this many seconds is refused (replay guard)", { min: 1, max: 3600 }),
  maxBodyBytes: int("BRIDGE_MAX_BODY_BYTES", MAX_EVENT_BYTES, "largest single-event request body, bytes; larger ones get 413 unread", { min: 1024, max: MAX_EVENT_BYTES }),
  maxBatchBytes: int("BRIDGE_MAX_BATCH_BYTES", MAX_BATCH_BYTES, "largest batch request body (application/vnd.pulsecast.batch+json, up to 100 events), bytes", { min: 1024, max: MAX_BATCH_BYTES }),
} as const;

/** NATS -> HTTP bridge: a durable JetStream consumer whose events are POSTed, signed, to the edge. */
export const natsToHttpSettings = {
  edgeUrl: url("EDGE_EVENTS_URL", "http://127.0.0.1:8787/hooks/events", "the edge's signed event ingress", { protocols: ["http:", "https:"] }),
  secrets: secrets("EDGE_INGRESS_SECRET", "Standard Webhooks secret(s) to sign with; several, comma separated, during a rotation (one signature each); no default. The media node signs its low-latency announcements with it too (with LLHLS_EDGE_URL)"),
  consumer: text("BRIDGE_CONSUMER", "edge-bridge", "durable JetStream consumer every replica shares (each event goes to one)", { pattern: /^[A-Za-z0-9_-]{1,64}$/ }),
  concurrency: int("BRIDGE_CONCURRENCY", 1024, "events one replica holds at most (queued, posting or waiting to retry); lower it with BRIDGE_BATCH_MAX=1", { min: 1, max: 4096 }),
  batchMax: int("BRIDGE_BATCH_MAX", 100, "events per signed POST (the batch form); 1 = one event per request in the single-event form", { min: 1, max: MAX_BATCH_EVENTS }),
  batchLingerMs: int("BRIDGE_BATCH_LINGER_MS", 10, "ms the first event of a batch waits for more before a partial batch is sent, while other POSTs are in flight (with none in flight a batch goes at once)", { min: 0, max: 1000 }),
  maxRequests: int("BRIDGE_MAX_REQUESTS", 4, "batch POSTs in flight per replica (group commit: batches grow with the load)", { min: 1, max: 1024 }),
  maxAckPending: int("BRIDGE_MAX_ACK_PENDING", 4096, "delivered-but-unacked events across all replicas; keep it >= replicas x BRIDGE_CONCURRENCY", { min: 1 }),
  ackWaitMs: int("BRIDGE_ACK_WAIT_MS", 30_000, "an event whose replica died (no ack, no progress for this many ms) is redelivered", { min: 1000, max: 3_600_000 }),
  requestTimeoutMs: int("BRIDGE_REQUEST_TIMEOUT_MS", 10_000, "one POST to the edge, ms; a timeout is retried; must be below BRIDGE_ACK_WAIT_MS", { min: 100 }),
  retryBaseMs: int("BRIDGE_RETRY_BASE_MS", 100, "first retry delay, ms; doubles each retry, with jitter", { min: 1 }),
  retryMaxMs: int("BRIDGE_RETRY_MAX_MS", 10_000, "largest retry delay, ms (also capped at half the ack wait)", { min: 1 }),
  holdMs: int("BRIDGE_HOLD_MS", 30_000, "ms an event is retried in place before it is handed back to JetStream with a delay (nak)", { min: 0 }),
  retryStatuses: list("BRIDGE_RETRY_STATUSES", ["401", "403", "408", "425", "429"], "4xx answers retried like 5xx instead of dead-lettered (401/403: a secret rotation in progress)", matching(/^4\d\d$/)),
  skipSources: list("BRIDGE_SKIP_SOURCES", ["edge"], "events whose `source` is one of these (or starts with `<it>/`) are acked unposted: they came from the edge, and a type either side emits would loop", matching(/^[A-Za-z0-9_./-]{1,256}$/)),
  metricsHost: host("METRICS_HOST", "where the bridge's /metrics and /healthz listen"),
  metricsPort: port("METRICS_PORT", 8789, "metrics and health port (0 = any free port, printed at start)"),
} as const;

export type HttpToNatsSettings = SettingsOf<typeof httpToNatsSettings>;
export type NatsToHttpSettings = SettingsOf<typeof natsToHttpSettings>;
