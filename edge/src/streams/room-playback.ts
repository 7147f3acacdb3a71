// What a room tells each viewer about its stream when the stream was created through the Streams API: a
// playback URL through this Worker's /play, public by id or, for a signed stream, with a viewer token minted
// for that viewer. Media-node URLs in events are never shown for such streams (they name storage directly,
// which for a signed stream would bypass the signature).
//
// The room mints in its fetch() (async, before the socket is accepted) and hands the result to its
// synchronous onConnect in a header it sets itself, after deleting any copy the request came with.
import type { Envelope } from "../../../shared/envelope.ts";
import type { RoomInfo } from "../../../shared/protocol/room.ts";
import type { VerifiedUser } from "../auth/claims.ts";
import type { Env } from "../env.ts";
import { isApiStreamId } from "../ingress/dispatch.ts";
import { playbackStateOf } from "../playback/access.ts";
import { mintPlaybackToken } from "../playback/tokens.ts";
import { edgeSettings } from "../settings.ts";
import { playUrl } from "./views.ts";

/** The stream's low-latency master under its playback root (the media node stores it beside `live.m3u8`). */
export const LOW_LATENCY_MASTER = "live-ll.m3u8";

/** Set by the room on its own copy of the upgrade request; a client's copy is deleted first. */
export const VIEWER_PLAYBACK_HEADER = "x-pulsecast-viewer-playback";

/** The `/play/<id or token>` root a viewer uses for one stream. */
export interface ViewerPlayback {
  streamId: string;
  /** `<base>/play/<id or token>` */
  root: string;
  /** unix seconds after which a token root must be minted again (0: never, a public root) */
  until: number;
}

/**
 * The viewer's playback root for `streamId`, or null when the stream is not playable (unknown, disabled, or
 * signed with no signing key configured). A signed root lives as long as the viewer's own JWT, at most
 * PLAYBACK_TOKEN_MAX_TTL_S: reconnecting with a fresh JWT gets a fresh one.
 */
export async function viewerPlayback(env: Env, streamId: string, user: Pick<VerifiedUser, "userId" | "exp">): Promise<ViewerPlayback | null> {
  const s = edgeSettings(env);
  const state = await playbackStateOf(env, streamId, s.playbackStateCacheMs);
  if (!state.exists || !state.playable) return null;
  const base = playUrl(s, streamId, "").replace(/\/$/, "");
  if (state.policy === "public") return { streamId, root: base, until: 0 };
  if (!s.playbackSigningKeys?.length) return null;
  const nowS = Math.floor(Date.now() / 1000);
  const exp = Math.max(nowS + 60, Math.min(user.exp, nowS + s.playbackTokenMaxTtlS));
  const { token } = await mintPlaybackToken(s.playbackSigningKeys, { streamId, exp, nbf: nowS, viewerId: user.userId });
  return { streamId, root: playUrl(s, token, "").replace(/\/$/, ""), until: exp - 60 };
}

/** For Room.fetch: the upgrade request with the viewer's playback root attached (or any client copy removed). */
export async function withViewerPlayback(env: Env, request: Request, info: RoomInfo, user: VerifiedUser): Promise<Request> {
  const headers = new Headers(request.headers);
  headers.delete(VIEWER_PLAYBACK_HEADER);
  const streamId = info.stream?.streamId;
  if (streamId && isApiStreamId(streamId)) {
    try {
      const playback = await viewerPlayback(env, streamId, user);
      if (playback) headers.set(VIEWER_PLAYBACK_HEADER, JSON.stringify(playback));
    } catch (error) {
      // The room stays usable without a playback URL; the viewer can ask the Streams API.
      console.error(`room: no playback URL for stream ${streamId}:`, error);
    }
  }
  return new Request(request, { headers });
}

/** In onConnect: what Room.fetch attached. */
export function viewerPlaybackFrom(request: Request): ViewerPlayback | undefined {
  const raw = request.headers.get(VIEWER_PLAYBACK_HEADER);
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw) as ViewerPlayback;
    return typeof v.root === "string" && typeof v.streamId === "string" ? v : undefined;
  } catch {
    return undefined;
  }
}

/** A stored key under the stream's playback root, as a path below it. */
function pathUnder(env: Env, streamId: string, key: string | undefined): string | undefined {
  if (!key) return undefined;
  const root = `${edgeSettings(env).mediaKeyPrefix}/${streamId}/`;
  return key.startsWith(root) ? key.slice(root.length) : undefined;
}

/** The room info a viewer sees: for an API stream, URLs through /play (or none), never the media node's. */
export function viewerRoomInfo(env: Env, info: RoomInfo, playback: ViewerPlayback | undefined): RoomInfo {
  const stream = info.stream;
  if (!stream || !isApiStreamId(stream.streamId)) return info;
  const { playbackUrl: _p, vodUrl: _v, vodKey, ...rest } = stream;
  const out: NonNullable<RoomInfo["stream"]> = rest;
  if (playback && playback.streamId === stream.streamId) {
    // A /play URL where the room's own state has a playback URL (live, or kept through a resume), never once ended.
    if (stream.playbackUrl && stream.status !== "ended") out.playbackUrl = `${playback.root}/${stream.latency === "low" ? LOW_LATENCY_MASTER : "live.m3u8"}`;
    const vodPath = pathUnder(env, stream.streamId, vodKey);
    if (vodPath) out.vodUrl = `${playback.root}/${vodPath}`;
  }
  return { ...info, stream: out };
}

/** Whether an event frame must be rewritten per viewer (it reports on an API stream and carries URLs). */
export function isApiStreamUrlEvent(event: Envelope): boolean {
  switch (event.type) {
    case "stream.live":
    case "stream.ended":
      return isApiStreamId(event.data.streamId);
    case "media.ready":
      return isApiStreamId(event.data.streamId);
    default:
      return false;
  }
}

/** The event as one viewer sees it: media-node URLs replaced by /play URLs under their root, or removed. */
export function viewerEvent(env: Env, event: Envelope, playback: ViewerPlayback | undefined): Envelope {
  const mine = (streamId: string | undefined) => (playback && playback.streamId === streamId ? playback : undefined);
  switch (event.type) {
    case "stream.live": {
      const { playbackUrl: _p, ...data } = event.data;
      const p = mine(event.data.streamId);
      // A viewer without a root keeps the frame (the stream is live) but no URL: it asks the Streams API.
      return { ...event, data: p ? { ...data, playbackUrl: `${p.root}/${event.data.latency === "low" ? LOW_LATENCY_MASTER : "live.m3u8"}` } : data } as Envelope;
    }
    case "stream.ended": {
      const { vodUrl: _v, ...data } = event.data;
      const p = mine(event.data.streamId);
      const path = pathUnder(env, event.data.streamId, event.data.vodKey);
      return { ...event, data: p && path ? { ...data, vodUrl: `${p.root}/${path}` } : data } as Envelope;
    }
    case "media.ready": {
      const { playbackUrl: _p, ...data } = event.data;
      const p = mine(event.data.streamId);
      const path = pathUnder(env, event.data.streamId ?? "", event.data.playlistKey);
      return { ...event, data: p && path ? { ...data, playbackUrl: `${p.root}/${path}` } : data } as Envelope;
    }
    default:
      return event;
  }
}

/** The stream an URL-carrying event reports on. */
export function streamOfUrlEvent(event: Envelope): string | undefined {
  return event.type === "stream.live" || event.type === "stream.ended" || event.type === "media.ready" ? event.data.streamId : undefined;
}

/** A connection's attachment with the playback root the room keeps for it. */
export type WithPlayback<T> = T & { playback?: ViewerPlayback };

/**
 * Sends API-stream events to every viewer, each with URLs under that viewer's own root. A viewer whose root is
 * for another stream, or expiring, gets a fresh one (one per user per call), kept in its attachment.
 */
export async function sendPerViewer<T extends { user: { userId: string } }>(
  env: Env,
  events: Envelope[],
  connections: Iterable<{ state: WithPlayback<T> | null; setState(s: WithPlayback<T>): unknown; send(text: string): void }>,
): Promise<void> {
  const nowS = Math.floor(Date.now() / 1000);
  const ttl = edgeSettings(env).playbackTokenDefaultTtlS;
  const fresh = new Map<string, ViewerPlayback | null>();
  for (const conn of connections) {
    const state = conn.state;
    if (!state) continue;
    let playback = state.playback;
    for (const event of events) {
      const streamId = streamOfUrlEvent(event);
      if (streamId && (!playback || playback.streamId !== streamId || (playback.until !== 0 && playback.until < nowS))) {
        const key = `${state.user.userId}\n${streamId}`;
        if (!fresh.has(key)) {
          try {
            fresh.set(key, await viewerPlayback(env, streamId, { userId: state.user.userId, exp: nowS + ttl }));
          } catch (error) {
            console.error(`room: no playback URL for stream ${streamId}:`, error);
            fresh.set(key, null);
          }
        }
        const next = fresh.get(key) ?? undefined;
        if (next) {
          playback = next;
          conn.setState({ ...state, playback });
        }
      }
      try {
        conn.send(JSON.stringify({ type: "event", event: viewerEvent(env, event, playback) }));
      } catch {
        // The socket is closing; its close handler updates presence.
      }
    }
  }
}
