import { z } from "zod";
import { rendition, roomId, storageKey, streamId, url } from "./common.ts";

// Live stream lifecycle, emitted by the media node that holds the publish.
// `roomId` is the edge room whose viewers care; when absent, the room is named after the stream id.

export const streamStarted = z.object({
  streamId,
  roomId: roomId.optional(),
  nodeId: z.string().max(128),
  app: z.string().max(64),
  /** true when a broadcaster reconnected within the grace window and the same stream continues */
  resumed: z.boolean().default(false),
  /** the broadcast this publish belongs to (its objects live under <prefix>/<streamId>/<broadcastId>/) */
  broadcastId: z.string().min(1).max(64).optional(),
});

export const streamLive = z.object({
  streamId,
  roomId: roomId.optional(),
  nodeId: z.string().max(128),
  playbackUrl: url,
  renditions: z.array(rendition).max(16),
  broadcastId: z.string().min(1).max(64).optional(),
  /** storage key of the broadcast's master playlist (of a low-latency broadcast: its LL-HLS master) */
  masterKey: storageKey.optional(),
  /**
   * `low`: the broadcast publishes low-latency HLS (parts listed by the edge's object for the stream); its
   * classic playlists are stored beside it (`master.m3u8`, the stream's `live.m3u8`)
   */
  latency: z.enum(["normal", "low"]).optional(),
});

export const streamEnded = z.object({
  streamId,
  roomId: roomId.optional(),
  nodeId: z.string().max(128),
  durationS: z.number().nonnegative(),
  reason: z.enum(["publisher-left", "node-shutdown", "transcoder-failed", "kicked"]),
  /** VOD playlist of the whole broadcast, when it was recorded */
  vodUrl: url.optional(),
  broadcastId: z.string().min(1).max(64).optional(),
  /** storage key of the recording's playlist, when it was recorded */
  vodKey: storageKey.optional(),
});

/**
 * The node could not encode the whole ladder in real time and shed rungs from the top: `renditions` is what the
 * stream's master playlist lists from now on (it replaces stream.live's list), `shed` the rungs just dropped.
 */
export const streamDegraded = z.object({
  streamId,
  roomId: roomId.optional(),
  nodeId: z.string().max(128),
  broadcastId: z.string().min(1).max(64).optional(),
  renditions: z.array(rendition).min(1).max(16),
  shed: z.array(z.string().max(32)).min(1).max(16),
  /** media seconds encoded per wall second over the window that decided it (below 1: falling behind) */
  speed: z.number().nonnegative(),
});
