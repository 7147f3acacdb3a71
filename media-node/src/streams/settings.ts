// Settings of stream-key checks against the edge (streams created through the edge's Streams API). Declared
// with the shared builders so the lead can fold them into the node's settings module.
import { int, readSettings, secret, type SettingsOf, url } from "../../../shared/settings/settings.ts";

export const streamKeySettingsSpec = {
  edgeUrl: url("STREAM_KEYS_EDGE_URL", undefined, "base URL of the edge the node asks about stream keys (POST /internal/streams/key-check); unset: keys are checked offline only", { protocols: ["http:", "https:"], optional: true }),
  internalToken: secret("INTERNAL_API_TOKEN", "bearer token of the edge's internal API (the node's key checks use it)", { optional: true }),
  intervalMs: int("STREAM_KEYS_CHECK_INTERVAL_MS", 2000, "how often the keys of streams live on this node are checked again (a revoked key is cut within about this long)", { min: 200, max: 60_000 }),
  timeoutMs: int("STREAM_KEYS_TIMEOUT_MS", 1500, "how long a key check may take before the edge counts as unreachable", { min: 100, max: 30_000 }),
};

export type StreamKeySettings = SettingsOf<typeof streamKeySettingsSpec>;

export function readStreamKeySettings(env: Record<string, unknown> = process.env): StreamKeySettings {
  return readSettings(streamKeySettingsSpec, env, "stream key settings");
}
