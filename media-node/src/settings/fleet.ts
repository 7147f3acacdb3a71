// Settings of the media node as one node of a fleet: where broadcasters reach it (handed out by the edge from its
// heartbeats), how often it heartbeats, its leases on the streams it carries, and how it drains for maintenance.

import { int, type SettingsOf, url } from "../../../shared/settings/settings.ts";

export const fleetSettings = {
  publicRtmpUrl: url(
    "MEDIA_PUBLIC_RTMP_URL",
    undefined,
    "where broadcasters reach this node, with the app (`rtmp://media-2.example.com:1935/live`): the edge hands it out from the node's heartbeats",
    { protocols: ["rtmp:", "rtmps:"], optional: true, defaultText: "`rtmp://<MEDIA_RTMP_HOST>:<MEDIA_RTMP_PORT>/<first app>` (127.0.0.1 for a wildcard host)" },
  ),
  heartbeatIntervalMs: int("MEDIA_HEARTBEAT_INTERVAL_MS", 2000, "how often the node tells the fleet (the edge) its health and load on the bus, ms", { min: 200, max: 60_000 }),
  leaseTtlS: int(
    "MEDIA_LEASE_TTL_S",
    4,
    "a live stream's lease (one owning node per stream, in NATS KV) expires this long after its node stopped renewing it: how soon another node may continue a broadcast whose node died",
    { min: 1, max: 120 },
  ),
  drainHandOffAfterS: int(
    "MEDIA_DRAIN_HANDOFF_AFTER_S",
    0,
    "draining (SIGTERM or POST /drain on the operations listener): live broadcasts still running after this many seconds are handed over (the broadcaster is disconnected and its reconnect continues the broadcast on another node)",
    { min: 0, max: 86_400 },
  ),
  drainTimeoutS: int(
    "MEDIA_DRAIN_TIMEOUT_S",
    900,
    "the longest a drain waits for VOD jobs in progress to finish (then they go back to the queue) and handed-over broadcasts to store their last segments; keep the unit's stop timeout above it",
    { min: 1, max: 86_400 },
  ),
} as const;

export type FleetSettings = SettingsOf<typeof fleetSettings>;

/** The RTMP URL broadcasters are handed for this node when MEDIA_PUBLIC_RTMP_URL is unset. */
export function defaultPublicRtmpUrl(rtmpHost: string, rtmpPort: number, app: string): string {
  const host = rtmpHost === "0.0.0.0" || rtmpHost === "::" || rtmpHost === "" ? "127.0.0.1" : rtmpHost;
  return `rtmp://${host.includes(":") ? `[${host}]` : host}:${rtmpPort}/${app}`;
}
