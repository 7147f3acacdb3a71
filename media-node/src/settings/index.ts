// The Node runtime's settings: one declaration per setting (shared/settings builders), grouped by what reads
// them; processes.ts says which process reads which groups. `settingsSections` is what the README shows.

import type { SettingsSpec } from "../../../shared/settings/settings.ts";
import { httpToNatsSettings, natsToHttpSettings } from "./bridges.ts";
import { devSettings } from "./env.ts";
import { mediaNodeSettings } from "./media.ts";
import { natsConnectionSettings, natsStreamSettings, outboxSettings } from "./nats.ts";
import { ingestSettings } from "./ingest.ts";
import { notifierSettings } from "./notifier.ts";
import { storageSettings } from "./storage.ts";
import { vodSettings } from "./vod.ts";
import { streamKeySettings } from "./stream-keys.ts";
import { fleetSettings } from "./fleet.ts";
import { llhlsSettings } from "./llhls.ts";

export * from "./processes.ts";
export { DEFAULT_INGEST_LIMITS, type IngestLimits, readIngestLimits } from "./ingest.ts";
export { DEFAULT_STREAM_KEY_SETTINGS, type StreamKeySettings } from "./stream-keys.ts";
export { defaultPublicRtmpUrl, type FleetSettings, fleetSettings } from "./fleet.ts";
export { DEFAULT_LLHLS_SETTINGS, type LlhlsSettings } from "./llhls.ts";
export { devSettings, isDevRun, isLoopbackHost, settingsEnv, DEV_VARS_PATH, readDevVars, parseDevVars } from "./env.ts";

/** README section name -> the group it documents (`<!-- settings:NAME -->`). */
export const nodeSettingsSections: { section: string; spec: SettingsSpec }[] = [
  { section: "node-dev", spec: devSettings },
  { section: "nats-connection", spec: natsConnectionSettings },
  { section: "nats-streams", spec: natsStreamSettings },
  { section: "media-node", spec: mediaNodeSettings },
  { section: "media-fleet", spec: fleetSettings },
  { section: "media-ingest", spec: ingestSettings },
  { section: "media-storage", spec: storageSettings },
  { section: "media-vod", spec: vodSettings },
  { section: "media-stream-keys", spec: streamKeySettings },
  { section: "media-llhls", spec: llhlsSettings },
  { section: "media-outbox", spec: outboxSettings },
  { section: "http-to-nats", spec: httpToNatsSettings },
  { section: "nats-to-http", spec: natsToHttpSettings },
  { section: "email-notifier", spec: notifierSettings },
];
