// Who may play what /play names: a stream (its policy and status, asked of its object) or an uploaded video (its
// policy, status and output folder, asked of its owner's VideoLibrary; the video's UploadSession object, named by
// the id, says who the owner is). Remembered per isolate for PLAYBACK_STATE_CACHE_MS, so a player's requests do
// not each cost a Durable Object round trip. A policy change, disable or delete therefore reaches every isolate
// within that time (the isolate that made the change forgets at once).
import type { Env } from "../env.ts";
import type { PlaybackState } from "../streams/stream-object.ts";
import { isVideoId } from "../videos/ids.ts";

/** A stream's or a video's playback state; a video also names the folder its outputs are stored in. */
export type PlaybackAccess = PlaybackState & ({ kind: "stream" } | { kind: "video"; prefix?: string });

const states = new Map<string, { state: PlaybackAccess; until: number }>();
const MAX_ENTRIES = 10_000;

async function lookUp(env: Env, id: string): Promise<PlaybackAccess> {
  if (!isVideoId(id)) return { kind: "stream", ...(await env.Stream.getByName(id).playbackState()) };
  const owner = await env.UploadSession.getByName(id).ownerOf();
  if (!owner) return { kind: "video", exists: false, playable: false };
  return { kind: "video", ...(await env.VideoLibrary.getByName(owner).playbackState(id)) };
}

export async function playbackStateOf(env: Env, id: string, ttlMs: number, now = Date.now()): Promise<PlaybackAccess> {
  const hit = states.get(id);
  if (hit && hit.until > now) return hit.state;
  const state = await lookUp(env, id);
  if (states.size >= MAX_ENTRIES) states.delete(states.keys().next().value!);
  if (ttlMs > 0) states.set(id, { state, until: now + ttlMs });
  return state;
}

export function forgetPlaybackState(id: string): void {
  states.delete(id);
}
