// Which settings each Node process reads. Every process validates all of its groups at start and reports every
// problem at once (one SettingsError), so a misconfigured process refuses to start instead of failing later.
//
//   media node        PULSECAST_DEV, NATS connection, NATS streams, outbox, media node, fleet, RTMP ingest limits,
//                     storage, stream-key checks, VOD, low-latency HLS
//   http-to-nats      PULSECAST_DEV, NATS connection, NATS streams, http-to-nats
//   nats-to-http      PULSECAST_DEV, NATS connection, NATS streams, nats-to-http
//   dead-letters      PULSECAST_DEV, NATS connection, NATS streams
//   email notifier    PULSECAST_DEV, NATS connection, NATS streams, email notifier

import { checkSettings, type RawEnv, SettingsError, type SettingsOf, type SettingsSpec } from "../../../shared/settings/settings.ts";
import { type StorageConfig, storageConfigFrom } from "../storage/config.ts";
import { httpToNatsSettings, natsToHttpSettings } from "./bridges.ts";
import { devListenerProblems, devSettings, settingsEnv } from "./env.ts";
import { type MediaConfig, mediaNodeProblems, mediaNodeSettings } from "./media.ts";
import { natsConnectionProblems, natsConnectionSettings, natsStreamSettings, outboxSettings } from "./nats.ts";
import { type IngestLimits, ingestSettings } from "./ingest.ts";
import { storageSettings } from "./storage.ts";
import { type VodSettings, vodSettings } from "./vod.ts";
import { type StreamKeySettings, streamKeyProblems, streamKeySettings } from "./stream-keys.ts";
import { notifierSettings } from "./notifier.ts";
import { type FleetSettings, fleetSettings } from "./fleet.ts";
import { type LlhlsSettings, llhlsProblems, llhlsSecretSettings, llhlsSettings } from "./llhls.ts";

export { SettingsError as ConfigError };

/**
 * Reads every setting of `spec`, then runs the cross-setting checks (on the defaults of the settings that were
 * refused, so they run even then); throws one error listing every problem.
 */
export function readGroup<S extends SettingsSpec>(spec: S, env: RawEnv, what: string, checks: (values: SettingsOf<S>) => string[] = () => []): SettingsOf<S> {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, setting] of Object.entries(spec)) {
    const one = checkSettings({ [key]: setting }, env);
    if (one.values === undefined) problems.push(...one.problems);
    values[key] = one.values === undefined ? setting.default : one.values[key];
  }
  problems.push(...checks(values as SettingsOf<S>));
  if (problems.length > 0) throw new SettingsError(problems, what);
  return values as SettingsOf<S>;
}

export const busProcessSettings = { ...natsConnectionSettings, ...natsStreamSettings, ...outboxSettings } as const;
export type BusConfig = SettingsOf<typeof busProcessSettings>;

/** The bus settings of a process that publishes through the outbox (the media node), or any NATS client. */
export function readBusConfig(env: RawEnv = settingsEnv()): BusConfig {
  return readGroup(busProcessSettings, env, "bus configuration", natsConnectionProblems);
}

/** Bus defaults with overrides and no environment lookup, for tests and embedding (credentials come in `overrides`). */
export function busConfig(overrides: Partial<BusConfig> = {}): BusConfig {
  const values = checkSettings(busProcessSettings, {}).values;
  if (!values) throw new Error("bus settings have no complete defaults");
  return { ...values, ...overrides };
}

export const mediaNodeProcessSettings = { ...devSettings, ...busProcessSettings, ...mediaNodeSettings, ...fleetSettings, ...ingestSettings, ...storageSettings, ...streamKeySettings, ...vodSettings, ...llhlsSettings, ...llhlsSecretSettings } as const;

export interface MediaNodeSettings {
  config: MediaConfig;
  storage: StorageConfig;
  bus: BusConfig;
  ingest: IngestLimits;
  streamKeys: StreamKeySettings;
  vod: VodSettings;
  fleet: FleetSettings;
  llhls: LlhlsSettings;
}

/** Everything the media node reads, checked together: one start shows every problem of every group. */
export function readMediaNodeSettings(env: RawEnv = settingsEnv()): MediaNodeSettings {
  let storage: StorageConfig | undefined;
  const v = readGroup(mediaNodeProcessSettings, env, "media node configuration", (v) => {
    const derived = storageConfigFrom(v, { httpBaseUrl: `http://${v.httpHost === "0.0.0.0" ? "127.0.0.1" : v.httpHost}:${v.httpPort}` });
    if (!("problems" in derived)) storage = derived;
    return [
      ...natsConnectionProblems(v),
      ...mediaNodeProblems(v),
      ...streamKeyProblems(v),
      ...llhlsProblems(v),
      ...("problems" in derived ? derived.problems : []),
      ...devListenerProblems(v.dev, { MEDIA_RTMP_HOST: v.rtmpHost, MEDIA_HTTP_HOST: v.httpHost, MEDIA_OPS_HOST: v.opsHost }),
    ];
  });
  const pick = <S extends SettingsSpec>(spec: S) => Object.fromEntries(Object.keys(spec).map((k) => [k, (v as Record<string, unknown>)[k]])) as SettingsOf<S>;
  return { config: pick(mediaNodeSettings), storage: storage!, bus: pick(busProcessSettings), ingest: pick(ingestSettings), streamKeys: pick(streamKeySettings), vod: pick(vodSettings), fleet: pick(fleetSettings), llhls: pick({ ...llhlsSettings, ...llhlsSecretSettings }) };
}

/** Only the media node's own group (no bus, no storage): tests that start a node in-process with their own bus. */
export function loadConfig(env: RawEnv = settingsEnv()): MediaConfig {
  return readGroup(mediaNodeSettings, env, "media node configuration", mediaNodeProblems);
}

export const httpToNatsProcessSettings = { ...devSettings, ...natsConnectionSettings, ...natsStreamSettings, ...httpToNatsSettings } as const;
export type HttpToNatsConfig = SettingsOf<typeof httpToNatsProcessSettings>;

export function readHttpToNatsConfig(env: RawEnv = settingsEnv()): HttpToNatsConfig {
  return readGroup(httpToNatsProcessSettings, env, "http-to-nats configuration", (v) => [...natsConnectionProblems(v), ...devListenerProblems(v.dev, { HTTP_TO_NATS_HOST: v.host })]);
}

export const natsToHttpProcessSettings = { ...devSettings, ...natsConnectionSettings, ...natsStreamSettings, ...natsToHttpSettings } as const;
export type NatsToHttpConfig = SettingsOf<typeof natsToHttpProcessSettings> & { retryStatusSet: Set<number> };

export function readNatsToHttpConfig(env: RawEnv = settingsEnv()): NatsToHttpConfig {
  const cfg = readGroup(natsToHttpProcessSettings, env, "nats-to-http configuration", (v) => [
    ...natsConnectionProblems(v),
    ...devListenerProblems(v.dev, { METRICS_HOST: v.metricsHost }),
    ...(v.requestTimeoutMs >= v.ackWaitMs ? [`BRIDGE_REQUEST_TIMEOUT_MS (${v.requestTimeoutMs}) must be below BRIDGE_ACK_WAIT_MS (${v.ackWaitMs}), or every slow POST is redelivered`] : []),
  ]);
  return { ...cfg, retryStatusSet: new Set(cfg.retryStatuses.map(Number)) };
}

export const deadLettersProcessSettings = { ...devSettings, ...natsConnectionSettings, ...natsStreamSettings } as const;

export function readDeadLettersConfig(env: RawEnv = settingsEnv()): SettingsOf<typeof deadLettersProcessSettings> {
  return readGroup(deadLettersProcessSettings, env, "dead-letters configuration", natsConnectionProblems);
}

export const notifierProcessSettings = { ...devSettings, ...natsConnectionSettings, ...natsStreamSettings, ...notifierSettings } as const;
export type NotifierConfig = SettingsOf<typeof notifierProcessSettings>;

export function readNotifierConfig(env: RawEnv = settingsEnv()): NotifierConfig {
  return readGroup(notifierProcessSettings, env, "email notifier configuration", (v) => [
    ...natsConnectionProblems(v),
    ...(Boolean(v.smtpUser) !== Boolean(v.smtpPassword) ? ["SMTP_USER and SMTP_PASSWORD must be set together"] : []),
    ...(v.retryMaxMs < v.retryBaseMs ? [`NOTIFIER_RETRY_MAX_MS (${v.retryMaxMs}) is below NOTIFIER_RETRY_BASE_MS (${v.retryBaseMs})`] : []),
  ]);
}
