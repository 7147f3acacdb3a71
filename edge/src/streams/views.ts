// What the Streams API answers: the owner sees everything (stream key included), anyone else the public
// fields. Playback URLs are built here, from storage keys, never taken from media-node events.
import { mintPublishToken } from "../../../shared/tokens/publish-token.ts";
import { type Broadcast, type Recording, statusOf, type StreamRecord } from "./model.ts";
import type { EdgeSettings } from "../settings.ts";
import { LOW_LATENCY_MASTER } from "./room-playback.ts";

/** The RTMP app stream keys are minted for (the media nodes' first app). */
export const STREAM_APP = "live";
/** Stream keys do not expire on their own: they are revoked by rotation, disabling or deletion. */
const STREAM_KEY_LIFETIME_S = 10 * 365 * 24 * 3600;

/** `<streamId>?token=<publish token carrying the key version>`: what OBS takes as its "stream key". */
export async function streamKeyFor(s: EdgeSettings, r: StreamRecord): Promise<string> {
  if (!s.publishTokenSecret) throw new Error("PUBLISH_TOKEN_SECRET is not set");
  const token = await mintPublishToken(s.publishTokenSecret, {
    sid: r.id,
    app: STREAM_APP,
    scope: "publish",
    // Deterministic for a key version (exp counts from creation), so reading the stream twice shows one key.
    exp: Math.floor(r.createdAt / 1000) + STREAM_KEY_LIFETIME_S,
    sub: r.ownerId,
    room: r.roomId,
    // No `rec`: recording is a setting that can change without changing the key; media nodes get it from the
    // key check (and use their own default when the edge cannot be asked).
    kv: r.keyVersion,
  });
  return `${r.id}?token=${token}`;
}

/** `<base>/play/<playback id or token>/<path>` */
export function playUrl(s: EdgeSettings, idOrToken: string, path = "live.m3u8"): string {
  return `${s.playbackBaseUrl.replace(/\/+$/, "")}/play/${idOrToken}/${path}`;
}

/** A recording's path under the stream's playback root, when its key lies there. */
export function recordingPath(s: EdgeSettings, streamId: string, rec: Recording): string | undefined {
  const root = `${s.mediaKeyPrefix}/${streamId}/`;
  if (rec.playlistKey?.startsWith(root)) return rec.playlistKey.slice(root.length);
  return rec.broadcastId ? `${rec.broadcastId}/vod.m3u8` : undefined;
}

function broadcastView(b: Broadcast) {
  return {
    broadcastId: b.broadcastId ?? null,
    startedAt: new Date(b.startedAt).toISOString(),
    liveAt: b.liveAt !== undefined ? new Date(b.liveAt).toISOString() : null,
    renditions: b.renditions,
  };
}

export function publicView(s: EdgeSettings, r: StreamRecord, viewers: number | null) {
  const status = statusOf(r);
  const open = r.policy === "public" && !r.disabled;
  return {
    id: r.id,
    roomId: r.roomId,
    title: r.title ?? null,
    status,
    playback: {
      policy: r.policy,
      playbackId: r.id,
      latency: r.latencyMode,
      ...(open ? { url: playUrl(s, r.id) } : {}),
      // Low latency: the LL-HLS master beside the classic one (which stays for players without LL support).
      ...(open && r.latencyMode === "low" ? { lowLatencyUrl: playUrl(s, r.id, LOW_LATENCY_MASTER) } : {}),
    },
    current: r.current && !r.disabled ? broadcastView(r.current) : null,
    startedAt: r.current && !r.disabled ? new Date(r.current.startedAt).toISOString() : null,
    renditions: r.current && !r.disabled ? r.current.renditions : [],
    viewers,
    recordings: r.recordings.map((rec) => {
      const path = recordingPath(s, r.id, rec);
      return {
        mediaId: rec.mediaId,
        broadcastId: rec.broadcastId ?? null,
        durationS: rec.durationS,
        readyAt: new Date(rec.readyAt).toISOString(),
        ...(open && path ? { url: playUrl(s, r.id, path) } : {}),
        ...(path ? { path } : {}),
      };
    }),
  };
}

/** Where a broadcaster publishes: a media node of the fleet (fleet/pick.ts), or RTMP_BASE_URL when none answers. */
export interface IngestTarget {
  rtmpServer: string;
  nodeId: string;
}

/** The owner's publish settings: the node's RTMP URL (or RTMP_BASE_URL), the stream key, and OBS's two fields. */
export async function ingestView(s: EdgeSettings, r: StreamRecord, ingest: IngestTarget | null) {
  const key = await streamKeyFor(s, r);
  const url = ingest?.rtmpServer ?? s.rtmpBaseUrl;
  return { rtmp: { url, streamKey: key, node: ingest?.nodeId ?? null }, obs: { server: url, key } };
}

export async function ownerView(s: EdgeSettings, r: StreamRecord, viewers: number | null, ingest: IngestTarget | null = null) {
  return {
    ...publicView(s, r, viewers),
    record: r.record,
    latencyMode: r.latencyMode,
    keyVersion: r.keyVersion,
    ...(await ingestView(s, r, ingest)),
    lastBroadcast: r.last ? { ...broadcastView(r.last), endedAt: new Date(r.last.endedAt).toISOString(), reason: r.last.reason } : null,
    createdAt: new Date(r.createdAt).toISOString(),
    updatedAt: new Date(r.updatedAt).toISOString(),
  };
}
