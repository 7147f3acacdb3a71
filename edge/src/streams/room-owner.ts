// The owner of a stream made through the Streams API moderates its room (delete, kick, ban, unban) as a
// `moderator` would: the broadcaster runs the chat of their own broadcast, with the same token they create
// streams with (role `broadcaster`, which alone moderates nowhere).
//
// The room decides in its fetch() (async: it asks the stream's object) and hands the verdict to its
// synchronous onConnect in a header it sets itself, after deleting any copy the request came with.
import type { RoomInfo } from "../../../shared/protocol/room.ts";
import type { VerifiedUser } from "../auth/claims.ts";
import type { Env } from "../env.ts";
import { isApiStreamId } from "../ingress/dispatch.ts";
import { BROADCASTER_ROLE } from "./routes.ts";

/** Set by the room on its own copy of the upgrade request; a client's copy is deleted first. */
export const STREAM_OWNER_HEADER = "x-pulsecast-stream-owner";

/**
 * Whether `user` owns an API stream whose room is `roomId`: the stream the room's state names, or the stream
 * the room is named after (a stream's room carries its id by default, so this holds before its first broadcast).
 */
export async function ownsRoomStream(env: Env, roomId: string, info: RoomInfo, user: Pick<VerifiedUser, "userId" | "role">): Promise<boolean> {
  if (user.role !== BROADCASTER_ROLE) return false;
  const candidates = [...new Set([info.stream?.streamId, roomId].filter(isApiStreamId))];
  for (const streamId of candidates) {
    const r = await env.Stream.getByName(streamId).get();
    if (r && r.roomId === roomId && r.ownerId === user.userId) return true;
  }
  return false;
}

/** For Room.fetch: the upgrade request with the ownership verdict attached (or any client copy removed). */
export async function withStreamOwner(env: Env, request: Request, roomId: string, info: RoomInfo, user: VerifiedUser): Promise<Request> {
  const headers = new Headers(request.headers);
  headers.delete(STREAM_OWNER_HEADER);
  try {
    if (await ownsRoomStream(env, roomId, info, user)) headers.set(STREAM_OWNER_HEADER, "1");
  } catch (error) {
    // Without the verdict the owner joins as a plain broadcaster: chat works, moderation waits for a reconnect.
    console.error(`room ${roomId}: stream ownership of ${user.userId} unknown:`, error);
  }
  return new Request(request, { headers });
}

/** In onConnect: what Room.fetch attached. */
export const ownsStreamFrom = (request: Request): boolean => request.headers.get(STREAM_OWNER_HEADER) === "1";
