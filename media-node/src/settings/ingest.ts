// Settings of the RTMP port's connection limits and of the node's own pull credentials (enforced by
// ingest/connection-gate.ts and ingest/pull-credentials.ts). Loopback is exempt from both connection caps: the node's own FFmpeg pulls and
// ffprobe come from there (one connection per live stream and per restart, and the node cannot tell them apart
// from anything else before their play command); every other connection from loopback is still closed by the
// handshake timeout.

import { int, readSettings, type RawEnv, type SettingsOf } from "../../../shared/settings/settings.ts";

export const ingestSettings = {
  handshakeTimeoutMs: int(
    "MEDIA_RTMP_HANDSHAKE_TIMEOUT_MS",
    5000,
    "an RTMP connection that has no accepted publish or play this long after it opened is closed (half handshakes, idle sockets, garbage)",
    { min: 500, max: 60_000 },
  ),
  maxConnectionsPerAddress: int(
    "MEDIA_RTMP_MAX_CONNECTIONS_PER_ADDRESS",
    16,
    "open RTMP connections one remote address may hold; the next is refused at once (loopback is exempt: the node's own FFmpeg pulls)",
    { min: 1, max: 10_000 },
  ),
  maxConnections: int(
    "MEDIA_RTMP_MAX_CONNECTIONS",
    1000,
    "open RTMP connections from other hosts in total; the next is refused at once (loopback is exempt)",
    { min: 1, max: 100_000 },
  ),
  pullTtlMs: int(
    "MEDIA_RTMP_PULL_TTL_MS",
    15_000,
    "how long a pull credential minted for one FFmpeg/ffprobe start stays valid if unused (each is single-use and loopback-only)",
    { min: 1000, max: 300_000 },
  ),
};

export type IngestLimits = SettingsOf<typeof ingestSettings>;

/** The defaults, for callers that do not read the environment (tests, embedding). */
export const DEFAULT_INGEST_LIMITS: IngestLimits = readSettings(ingestSettings, {});

/** Reads the limits from `env`; throws one SettingsError listing every bad value. */
export function readIngestLimits(env: RawEnv): IngestLimits {
  return readSettings(ingestSettings, env, "RTMP ingest limits");
}
