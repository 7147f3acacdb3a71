import { z } from "zod";
import { mediaId, rendition, roomId, storageKey, streamId, url, userId } from "./common.ts";

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

/** Processing stages of an upload, in order (`download`: the media node fetches the source from storage). */
export const mediaStage = z.enum(["download", "probe", "transcode", "thumbnails", "upload"]);

/** Object keys of a processed video, relative to the bucket (the edge builds playback URLs from them). */
export const mediaKeys = z.object({
  master: storageKey,
  poster: storageKey.optional(),
  /** WebVTT trick-play cues (`sprite.jpg#xywh=x,y,w,h`) */
  storyboard: storageKey.optional(),
  /** the same storyboard as JSON (`{url, tile_width, tile_height, duration, tiles:[{start,x,y}]}` per sheet) */
  storyboardJson: storageKey.optional(),
  thumbnails: z.array(storageKey).max(16).optional(),
});

export const mediaProgress = z.object({
  mediaId,
  ownerId: userId.optional(),
  roomId: roomId.optional(),
  stage: mediaStage,
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
  /** what was encoded (uploads processed by a media node) */
  renditions: z.array(rendition).max(16).optional(),
  keys: mediaKeys.optional(),
});

/**
 * The first rendition of an upload can be played from the start while the rest is still being encoded: the
 * master playlist lists every rendition, each an EVENT playlist that grows until `media.ready`.
 */
export const mediaPlayable = z.object({
  mediaId,
  ownerId: userId.optional(),
  roomId: roomId.optional(),
  playbackUrl: url,
  masterKey: storageKey,
  renditions: z.array(rendition).max(16),
});

export const mediaFailed = z.object({
  mediaId,
  ownerId: userId.optional(),
  roomId: roomId.optional(),
  stage: mediaStage.optional(),
  reason: z.string().min(1).max(2000),
});

export type MediaStage = z.infer<typeof mediaStage>;
