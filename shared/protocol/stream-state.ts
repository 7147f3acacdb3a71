// The room's view of its live stream, driven by `stream.*` and `media.ready` events. Pure, so ordering
// rules are testable: events arrive at least once and possibly out of order, so an event older than the
// state it would replace changes nothing.
//
// What the media node emits for one broadcast: `stream.started` (resumed: false) when the publish begins,
// `stream.live` once, when the first playlists are stored, then `stream.ended` (and `media.ready` for the
// recording). A broadcaster who reconnects within the grace window continues the same broadcast: that sends
// `stream.started` with resumed: true and no second `stream.live`, since the playback URL has not changed.
// An FFmpeg restart after a crash sends nothing: the playlists continue. So a resumed start must keep what
// the room knows (a live stream stays live with its playback URL), or a late joiner is told `starting` about a
// stream that plays.
//
// Shared by the room (edge) and the client library, so a client keeps its stream state exactly as the room does.
import type { Envelope } from "../envelope.ts";
import type { RoomInfo } from "./room.ts";

type StreamInfo = NonNullable<RoomInfo["stream"]>;

/** The system events a room takes and folds into its stream state: `stream.*` and `media.*`. */
export type RoomEvent = Extract<Envelope, { type: `stream.${string}` | `media.${string}` }>;

export function nextRoomInfo(info: RoomInfo, event: RoomEvent): RoomInfo {
  const at = Date.parse(event.time);
  const current = info.stream;
  switch (event.type) {
    case "stream.started":
    case "stream.live":
    case "stream.ended":
    case "stream.degraded": {
      const stream = nextStream(current && current.streamId === event.data.streamId ? current : undefined, event, at);
      return stream === current ? info : { ...info, stream };
    }
    case "media.ready":
      // The recording of the room's stream is ready: that is the stream's VOD.
      if (current && event.data.streamId === current.streamId) return { ...info, stream: { ...current, vodUrl: event.data.playbackUrl, ...(event.data.playlistKey ? { vodKey: event.data.playlistKey } : {}) } };
      return info;
    default:
      return info;
  }
}

/** The stream's next state; `same` is the room's current state when it is about the event's stream. */
function nextStream(same: StreamInfo | undefined, event: Extract<RoomEvent, { type: "stream.started" | "stream.live" | "stream.ended" | "stream.degraded" }>, at: number): StreamInfo | undefined {
  const { streamId } = event.data;
  switch (event.type) {
    case "stream.started": {
      if (!event.data.resumed) {
        // A new broadcast, unless something newer about this stream is known already.
        if (same && same.updatedAt > at) return same;
        return { streamId, status: "starting", startedAt: at, updatedAt: at };
      }
      // A resume of the broadcast the room knows: nothing a viewer sees changes (same playlists, same URL).
      if (same && same.status !== "ended") return same;
      // After its end (an end older than this resume belongs to an earlier broadcast), or a broadcast whose
      // first start the room never saw: it is starting, and its start time is unknown.
      if (same && same.updatedAt > at) return same;
      return { streamId, status: "starting", updatedAt: at };
    }
    case "stream.live": {
      if (same) {
        // A broadcast that started after this event makes it an earlier broadcast's.
        if (same.startedAt !== undefined && same.startedAt > at) return same;
        // A later end or a later `live` is newer. A later `starting` is not, when it came from a resume (no
        // start time): the resumed broadcast began before it, and this is that broadcast's playback URL.
        if (same.status !== "starting" && same.updatedAt > at) return same;
      }
      // After an older end this is a later broadcast whose start the room missed: nothing of the old one stays.
      const base: Omit<StreamInfo, "status" | "updatedAt"> & { updatedAt?: number } = same && same.status !== "ended" ? same : { streamId };
      const { latency: _l, ...rest } = base;
      return { ...rest, status: "live", playbackUrl: event.data.playbackUrl, ...(event.data.latency === "low" ? { latency: "low" as const } : {}), updatedAt: Math.max(at, base.updatedAt ?? at) };
    }
    case "stream.degraded": {
      // The node shed rungs of the broadcast the room knows (sheds only ever remove rungs, so of two the one
      // keeping fewer is the later, whatever order they arrive in). Nothing to say about an ended broadcast or a
      // later one; a broadcast the room has not heard of yet did start (its other events may still be on the way).
      const kept = event.data.renditions.map((r) => r.name);
      if (!same) return { streamId, status: "starting", renditions: kept, updatedAt: at };
      if (same.status === "ended" || (same.startedAt !== undefined && same.startedAt > at)) return same;
      if (same.renditions && same.renditions.length <= kept.length) return same;
      return { ...same, renditions: kept, updatedAt: Math.max(same.updatedAt, at) };
    }
    case "stream.ended": {
      if (same && same.updatedAt > at) return same;
      const ended: StreamInfo = { ...(same ?? { streamId }), status: "ended", updatedAt: at };
      // The recording's storage key is kept so a room of an API stream can hand each viewer a /play URL for it.
      return { ...ended, ...(event.data.vodUrl ? { vodUrl: event.data.vodUrl } : {}), ...(event.data.vodKey ? { vodKey: event.data.vodKey } : {}) };
    }
  }
}
