// The room's view of its live stream, driven by `stream.*` and `media.ready` events. Pure, so ordering
// rules are testable: events arrive at least once and possibly out of order, so an event older than the
// state it would replace (same stream, earlier `time`) changes nothing.
import type { RoomInfo } from "../../../shared/protocol/room.ts";
import type { RoomEvent } from "./room-events.ts";

export function nextRoomInfo(info: RoomInfo, event: RoomEvent): RoomInfo {
  const at = Date.parse(event.time);
  const current = info.stream;
  switch (event.type) {
    case "stream.started":
    case "stream.live":
    case "stream.ended": {
      const { streamId } = event.data;
      if (current && current.streamId === streamId && current.updatedAt > at) return info;
      const base = current && current.streamId === streamId ? current : { streamId, status: "starting" as const, updatedAt: at };
      if (event.type === "stream.started") return { ...info, stream: { streamId, status: "starting", updatedAt: at } };
      if (event.type === "stream.live") return { ...info, stream: { ...base, status: "live", playbackUrl: event.data.playbackUrl, updatedAt: at } };
      const ended = { ...base, status: "ended" as const, updatedAt: at };
      const vodKey = event.data.vodKey ? { vodKey: event.data.vodKey } : {};
      return { ...info, stream: event.data.vodUrl ? { ...ended, vodUrl: event.data.vodUrl, ...vodKey } : { ...ended, ...vodKey } };
    }
    case "media.ready":
      // The recording of the room's stream is ready: that is the stream's VOD.
      if (current && event.data.streamId === current.streamId) return { ...info, stream: { ...current, vodUrl: event.data.playbackUrl, ...(event.data.playlistKey ? { vodKey: event.data.playlistKey } : {}) } };
      return info;
    default:
      return info;
  }
}
