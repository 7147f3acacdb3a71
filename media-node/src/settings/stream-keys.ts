// Settings of the media node's stream-key checks against the edge (streams created through the edge's Streams
// API carry a key version the edge can revoke; streams/stream-keys.ts asks the edge about it over HTTP).
// Unset STREAM_KEYS_EDGE_URL leaves them off: publish tokens are then checked offline only (their HMAC).

import { int, readSettings, secret, type SettingsOf, url } from "../../../shared/settings/settings.ts";

export const streamKeySettings = {
  edgeUrl: url("STREAM_KEYS_EDGE_URL", undefined, "base URL of the edge the node asks about stream keys (POST /internal/streams/key-check); unset: keys are checked offline only", { protocols: ["http:", "https:"], optional: true }),
  internalToken: secret("INTERNAL_API_TOKEN", "bearer token of the edge's internal API, which the node's key checks use; required with STREAM_KEYS_EDGE_URL", { optional: true }),
  intervalMs: int("STREAM_KEYS_CHECK_INTERVAL_MS", 2000, "how often the keys of streams live on this node are checked again (a revoked key is cut within about this long)", { min: 200, max: 60_000 }),
  timeoutMs: int("STREAM_KEYS_TIMEOUT_MS", 1500, "how long a key check may take before the edge counts as unreachable", { min: 100, max: 30_000 }),
};

export type StreamKeySettings = SettingsOf<typeof streamKeySettings>;

/** Checks off: the defaults, for callers that do not read the environment (tests, embedding). */
export const DEFAULT_STREAM_KEY_SETTINGS: StreamKeySettings = readSettings(streamKeySettings, {});

/** Problems only visible across the group's settings. */
export function streamKeyProblems(s: StreamKeySettings): string[] {
  return s.edgeUrl && !s.internalToken ? ["STREAM_KEYS_EDGE_URL is set but INTERNAL_API_TOKEN is not: the node cannot ask the edge about stream keys"] : [];
}
