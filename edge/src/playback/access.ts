// Who may play a stream: the stream's policy and status, asked of its object and remembered per isolate for
// PLAYBACK_STATE_CACHE_MS, so a player's requests do not each cost a Durable Object round trip. A policy
// change, disable or delete therefore reaches every isolate within that time (the isolate that made the
// change forgets at once).
import type { Env } from "../env.ts";
import type { PlaybackState } from "../streams/stream-object.ts";

const states = new Map<string, { state: PlaybackState; until: number }>();
const MAX_ENTRIES = 10_000;

export async function playbackStateOf(env: Env, streamId: string, ttlMs: number, now = Date.now()): Promise<PlaybackState> {
  const hit = states.get(streamId);
  if (hit && hit.until > now) return hit.state;
  const state = await env.Stream.getByName(streamId).playbackState();
  if (states.size >= MAX_ENTRIES) states.delete(states.keys().next().value!);
  if (ttlMs > 0) states.set(streamId, { state, until: now + ttlMs });
  return state;
}

export function forgetPlaybackState(streamId: string): void {
  states.delete(streamId);
}
