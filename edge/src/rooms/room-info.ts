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
import type { RoomInfo } from "../../../shared/protocol/room.ts";
import type { RoomEvent } from "./room-events.ts";

type StreamInfo = NonNullable<RoomInfo["stream"]>;

export function nextRoomInfo(info: RoomInfo, event: RoomEvent): RoomInfo {
  const at = Date.parse(event.time);
  const current = info.stream;
  switch (event.type) {
    case "stream.started":
    case "stream.live":
    case "stream.ended": {
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
function nextStream(same: StreamInfo | undefined, event: Extract<RoomEvent, { type: "stream.started" | "stream.live" | "stream.ended" }>, at: number): StreamInfo | undefined {
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
      return { ...base, status: "live", playbackUrl: event.data.playbackUrl, updatedAt: Math.max(at, base.updatedAt ?? at) };
    }
    case "stream.ended": {
      if (same && same.updatedAt > at) return same;
      const ended: StreamInfo = { ...(same ?? { streamId }), status: "ended", updatedAt: at };
      // The recording's storage key is kept so a room of an API stream can hand each viewer a /play URL for it.
      return { ...ended, ...(event.data.vodUrl ? { vodUrl: event.data.vodUrl } : {}), ...(event.data.vodKey ? { vodKey: event.data.vodKey } : {}) };
    }
  }
}
