// Settings of the HTTP -> NATS bridge (`node media-node/src/bridges/http-to-nats/main.ts`).
// Every setting: env var, default, meaning. Read and checked at start-up; a bad value stops the process.

import { MAX_BATCH_BYTES } from "../../../../shared/batch.ts";
import { MAX_EVENT_BYTES } from "../../../../shared/envelope.ts";
import { DEFAULT_TOLERANCE_S } from "../../../../shared/signing/webhooks.ts";
import { busSettings } from "../../bus/config.ts";
import { hostSetting, intSetting, portSetting, readSettings, secretsSetting, type SettingsOf } from "../../bus/settings.ts";

export const httpToNatsSettings = {
  natsUrl: busSettings.natsUrl,
  stream: busSettings.stream,
  deadLetterStream: busSettings.deadLetterStream,
  duplicateWindowS: busSettings.duplicateWindowS,
  maxAgeS: busSettings.maxAgeS,
  publishTimeoutMs: busSettings.publishTimeoutMs,
  /** HTTP_TO_NATS_HOST (default 127.0.0.1): listen address. Put it behind TLS (or a tunnel) when the edge is remote. */
  host: hostSetting("HTTP_TO_NATS_HOST", "127.0.0.1", "listen address"),
  /** HTTP_TO_NATS_PORT (default 8788; 0 = any free port, printed at start): where POST /events listens. */
  port: portSetting("HTTP_TO_NATS_PORT", 8788, "listen port"),
  /**
   * BRIDGE_INGRESS_SECRET (required; no default): Standard Webhooks secret(s) the edge signs with. Several,
   * comma separated, during a rotation: a request signed with any one of them is accepted.
   */
  secrets: secretsSetting("BRIDGE_INGRESS_SECRET", "Standard Webhooks secret(s) shared with the edge's outbox"),
  /** BRIDGE_TIMESTAMP_TOLERANCE_S (default 300): webhook-timestamp older or newer than this is refused (replay guard). */
  toleranceS: intSetting("BRIDGE_TIMESTAMP_TOLERANCE_S", DEFAULT_TOLERANCE_S, "signature timestamp tolerance, s", { min: 1, max: 3600 }),
  /** BRIDGE_MAX_BODY_BYTES (default 65536 = the envelope's own limit): larger bodies get 413 unread. */
  maxBodyBytes: intSetting("BRIDGE_MAX_BODY_BYTES", MAX_EVENT_BYTES, "largest request body, bytes", { min: 1024, max: MAX_EVENT_BYTES }),
  /**
   * BRIDGE_MAX_BATCH_BYTES (default 1048576 = shared/batch.ts MAX_BATCH_BYTES): largest body of a batch request
   * (Content-Type application/vnd.pulsecast.batch+json, up to 100 events); larger ones get 413 unread.
   */
  maxBatchBytes: intSetting("BRIDGE_MAX_BATCH_BYTES", MAX_BATCH_BYTES, "largest batch request body, bytes", { min: 1024, max: MAX_BATCH_BYTES }),
} as const;

export type HttpToNatsConfig = SettingsOf<typeof httpToNatsSettings>;

export function readHttpToNatsConfig(env?: Record<string, string | undefined>): HttpToNatsConfig {
  return readSettings(httpToNatsSettings, env);
}
