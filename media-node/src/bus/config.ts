// Settings of the event bus (NATS JetStream) and the media node's local outbox.
// Every setting: env var, default, meaning. Read once at start-up with readBusConfig().

import { intSetting, readSettings, type SettingsOf, stringSetting, urlSetting } from "./settings.ts";

export const busSettings = {
  /** NATS_URL (default nats://127.0.0.1:4222): the NATS server, or several comma-separated for a cluster. */
  natsUrl: urlSetting("NATS_URL", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated for a cluster", ["nats:", "tls:"]),
  /** NATS_STREAM (default EVENTS): JetStream stream holding every event, subjects = event types. */
  stream: stringSetting("NATS_STREAM", "EVENTS", "JetStream stream for events", /^[A-Za-z0-9_-]{1,64}$/),
  /** NATS_DEAD_LETTER_STREAM (default DEADLETTER): stream for events the edge refused for good (`deadletter.<type>`). */
  deadLetterStream: stringSetting("NATS_DEAD_LETTER_STREAM", "DEADLETTER", "JetStream stream for dead-lettered events", /^[A-Za-z0-9_-]{1,64}$/),
  /**
   * NATS_DUPLICATE_WINDOW_S (default 3600): how long JetStream remembers message ids (= event ids) to drop
   * re-publishes. An hour covers an outbox replaying after a crash; anything older is still absorbed by the
   * edge's applied-event ledger (7 days).
   */
  duplicateWindowS: intSetting("NATS_DUPLICATE_WINDOW_S", 3600, "JetStream duplicate window in seconds", { min: 1, max: 7 * 86400 }),
  /** NATS_MAX_AGE_S (default 604800 = 7 days): events older than this are dropped from the stream. */
  maxAgeS: intSetting("NATS_MAX_AGE_S", 7 * 86400, "how long events stay in the stream, seconds", { min: 60 }),
  /** NATS_PUBLISH_TIMEOUT_MS (default 5000): how long to wait for JetStream to confirm one stored event. */
  publishTimeoutMs: intSetting("NATS_PUBLISH_TIMEOUT_MS", 5000, "JetStream publish ack timeout, ms", { min: 100, max: 120_000 }),
  /** OUTBOX_DIR (default ./var/outbox): where the media node's outbox keeps events not yet stored by JetStream. */
  outboxDir: stringSetting("OUTBOX_DIR", "var/outbox", "directory of the local event outbox"),
  /** OUTBOX_MAX_BYTES (default 268435456 = 256 MiB): publish() refuses new events beyond this much backlog on disk. */
  outboxMaxBytes: intSetting("OUTBOX_MAX_BYTES", 256 * 1024 * 1024, "largest outbox backlog on disk, bytes", { min: 1024 * 1024 }),
  /**
   * OUTBOX_PUBLISH_WINDOW (default 64): events the outbox pump has in flight to JetStream at once, in order.
   * 1 gives strict order even across a publish that failed after later ones succeeded; larger is faster.
   */
  outboxPublishWindow: intSetting("OUTBOX_PUBLISH_WINDOW", 64, "outbox publishes in flight at once", { min: 1, max: 4096 }),
} as const;

export type BusConfig = SettingsOf<typeof busSettings>;

export function readBusConfig(env?: Record<string, string | undefined>): BusConfig {
  return readSettings(busSettings, env);
}

/** Defaults with overrides, for tests and embedding (no env lookup). */
export function busConfig(overrides: Partial<BusConfig> = {}): BusConfig {
  return { ...readSettings(busSettings, {}), ...overrides };
}
