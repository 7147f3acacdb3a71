// Where a player fetches a video's files (master playlist, poster, storyboard): through the edge's /play, like
// live streams. An upload plays under its own id (`/play/<videoId>/master.m3u8`) and its own policy; a live
// recording under its stream's id and policy (`/play/<streamId>/<broadcastId>/vod.m3u8`). A signed one gets a
// viewer token in the path in place of the id, so the playlists' relative URIs carry it.
import type { Env } from "../env.ts";
import { isApiStreamId } from "../ingress/dispatch.ts";
import { playbackStateOf } from "../playback/access.ts";
import { mintPlaybackToken } from "../playback/tokens.ts";
import type { EdgeSettings } from "../settings.ts";
import { playUrl } from "../streams/views.ts";
import { isVideoId } from "./ids.ts";
import { outputPrefixOf, policyOf, type VideoRecord } from "./records.ts";

/** The id /play knows a video by, and the storage folder its files are served from. */
export interface PlaybackHandle {
  id: string;
  kind: "video" | "stream";
  prefix: string;
}

export function playbackHandle(s: Pick<EdgeSettings, "mediaKeyPrefix">, v: VideoRecord): PlaybackHandle | undefined {
  const prefix = outputPrefixOf(v);
  if (!prefix) return undefined;
  if (v.streamId) {
    const root = `${s.mediaKeyPrefix}/${v.streamId}`;
    return isApiStreamId(v.streamId) && (prefix === root || prefix.startsWith(`${root}/`)) ? { id: v.streamId, kind: "stream", prefix: root } : undefined;
  }
  return isVideoId(v.id) ? { id: v.id, kind: "video", prefix } : undefined;
}

/** A stored key's path under the handle's folder, or undefined when /play cannot reach it from there. */
export function pathUnder(handle: PlaybackHandle, key: string | undefined): string | undefined {
  return key?.startsWith(`${handle.prefix}/`) ? key.slice(handle.prefix.length + 1) : undefined;
}

/**
 * The owner's URLs for a video's stored keys: by id when it (or its stream) is public, with a viewer token of
 * PLAYBACK_TOKEN_DEFAULT_TTL_S when signed. Null when the video cannot be played through /play (not processed
 * yet, its stream disabled or deleted, or signed with no signing key configured).
 */
export async function ownerPlaybackUrls(env: Env, s: EdgeSettings, v: VideoRecord): Promise<((key: string | undefined) => string | undefined) | null> {
  const handle = playbackHandle(s, v);
  if (!handle) return null;
  let policy = policyOf(v);
  if (handle.kind === "stream") {
    const state = await playbackStateOf(env, handle.id, s.playbackStateCacheMs);
    if (!state.exists || !state.playable) return null;
    policy = state.policy ?? "public";
  }
  let root = handle.id;
  if (policy === "signed") {
    if (!s.playbackSigningKeys?.length) return null;
    const nowS = Math.floor(Date.now() / 1000);
    root = (await mintPlaybackToken(s.playbackSigningKeys, { streamId: handle.id, exp: nowS + s.playbackTokenDefaultTtlS, nbf: nowS, viewerId: v.ownerId })).token;
  }
  return (key) => {
    const path = pathUnder(handle, key);
    return path ? playUrl(s, root, path) : undefined;
  };
}
