// Settings of low-latency HLS on the media node: where parts are announced (the edge's per-stream object),
// with which secret, and how long a part is. A stream asks for low latency through the Streams API
// (`latencyMode: "low"`, learned from the key check); without LLHLS_EDGE_URL the node has nowhere to announce
// parts and such a stream gets classic HLS.

import { int, readSettings, secrets, type SettingsOf, url } from "../../../shared/settings/settings.ts";

export const llhlsSettings = {
  llhlsEdgeUrl: url("LLHLS_EDGE_URL", undefined, "base URL of the edge low-latency parts are announced to (POST /hooks/llhls/<streamId>/announce), signed with EDGE_INGRESS_SECRET; unset: streams asking for low latency get classic HLS", { protocols: ["http:", "https:"], optional: true }),
  partMs: int("LLHLS_PART_MS", 333, "target part duration, ms; parts are whole frames (10 at 30 fps) and PART-HOLD-BACK, the players' distance to the live edge, is 3 parts", { min: 100, max: 1000 }),
  announceTimeoutMs: int("LLHLS_ANNOUNCE_TIMEOUT_MS", 2000, "one announcement POST may take this long before it is retried, ms", { min: 100, max: 30_000 }),
};

/**
 * The secret announcements are signed with: the edge's EDGE_INGRESS_SECRET, the one the NATS→HTTP bridge signs
 * events with (documented in that bridge's table; the same variable, so the node reads it here too).
 */
export const llhlsSecretSettings = {
  announceSecrets: secrets("EDGE_INGRESS_SECRET", "Standard Webhooks secret(s) low-latency announcements are signed with; required with LLHLS_EDGE_URL", { optional: true }),
};

export type LlhlsSettings = SettingsOf<typeof llhlsSettings> & SettingsOf<typeof llhlsSecretSettings>;

/** Low latency off: the defaults, for callers that do not read the environment (tests, embedding). */
export const DEFAULT_LLHLS_SETTINGS: LlhlsSettings = readSettings({ ...llhlsSettings, ...llhlsSecretSettings }, {});

export function llhlsProblems(s: LlhlsSettings): string[] {
  return s.llhlsEdgeUrl && !s.announceSecrets?.length ? ["LLHLS_EDGE_URL is set but EDGE_INGRESS_SECRET is not: the node cannot sign its part announcements"] : [];
}
