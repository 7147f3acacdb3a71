// Which system events a room takes (from the signed ingress or the internal push API), and which room
// an event is for.
import type { Envelope } from "../../../shared/envelope.ts";
import type { RoomEvent } from "../../../shared/protocol/stream-state.ts";

export type { RoomEvent };

export function isRoomEvent(event: Envelope): event is RoomEvent {
  return event.type.startsWith("stream.") || event.type.startsWith("media.");
}

/**
 * The room an event names: `data.roomId`, else for `stream.*` the stream id (a stream's room is named after
 * the stream unless told otherwise, see shared/events/stream.ts), else undefined (no opinion).
 */
export function roomIdOfEvent(event: RoomEvent): string | undefined {
  const data = event.data as { roomId?: string; streamId?: string };
  if (data.roomId) return data.roomId;
  if (event.type.startsWith("stream.")) return data.streamId;
  return undefined;
}
