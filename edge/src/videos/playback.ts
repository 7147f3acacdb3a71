// Where a player fetches a stored object of a video (master playlist, poster, storyboard). One function, so
// playback can move behind the edge's own /play path (signed or public) by changing it alone.

import type { Env } from "../env.ts";

export function playbackUrl(env: Pick<Env, "PLAYBACK_BASE_URL">, key: string): string {
  const base = (env.PLAYBACK_BASE_URL ?? "").replace(/\/+$/, "");
  return `${base}/${key.split("/").map(encodeURIComponent).join("/")}`;
}
