import { z } from "zod";
import { mediaId, roomId, storageKey, streamId, url, userId } from "./common.ts";

// Media objects: uploads (VOD) and recordings of live streams.

export const mediaUploaded = z.object({
  mediaId,
  ownerId: userId,
  roomId: roomId.optional(),
  /** object key of the original in the bucket */
  key: z.string().min(1).max(1024),
  size: z.number().int().nonnegative().optional(),
  contentType: z.string().max(255).optional(),
});

export const mediaProgress = z.object({
  mediaId,
  ownerId: userId.optional(),
  roomId: roomId.optional(),
  stage: z.enum(["probe", "transcode", "thumbnails", "upload"]),
  percent: z.number().min(0).max(100),
});

export const mediaReady = z.object({
  mediaId,
  ownerId: userId.optional(),
  roomId: roomId.optional(),
  /** set when the media is the recording of a live stream */
  streamId: streamId.optional(),
  playbackUrl: url,
  /** storage key of the playlist (the edge builds viewers' URLs from it) */
  playlistKey: storageKey.optional(),
  durationS: z.number().nonnegative(),
  posterUrl: url.optional(),
  thumbnailsUrl: url.optional(),
});

export const mediaFailed = z.object({
  mediaId,
  ownerId: userId.optional(),
  roomId: roomId.optional(),
  stage: z.enum(["probe", "transcode", "thumbnails", "upload"]).optional(),
  reason: z.string().min(1).max(2000),
});
