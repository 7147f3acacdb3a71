// Rooms that grew big by themselves (ROOM_SHARD_AT), as the front Worker learns of them: the small room answers
// every request with 409 `room_moved` and this header once it has handed over (handover.ts); the Worker then
// serves that request as a big room's and remembers the room, so later requests through the same isolate go to
// the shards directly. A room never grows back, so what an isolate remembers never goes stale.
import { errorResponse } from "../auth/errors.ts";

/** Set only by a Room on its own answer (a response header: clients cannot put it there). */
export const ROOM_GROWN_HEADER = "x-pulsecast-room-grown";

/** What a grown room answers; the front Worker turns it into a big-room request, clients do not see it. */
export function roomMovedResponse(): Response {
  return errorResponse(409, "room_moved", "this room is served by its shards now; connect again", { [ROOM_GROWN_HEADER]: "1" });
}

export const isRoomMoved = (res: Response): boolean => res.status === 409 && res.headers.get(ROOM_GROWN_HEADER) === "1";

/** Grown rooms this isolate has seen, oldest first (bounded: an evicted one costs one more question to its Room). */
const known = new Set<string>();
const KNOWN_MAX = 10_000;

export function rememberGrown(roomId: string): void {
  known.delete(roomId);
  known.add(roomId);
  if (known.size > KNOWN_MAX) known.delete(known.values().next().value!);
}

export const knownGrown = (roomId: string): boolean => known.has(roomId);
