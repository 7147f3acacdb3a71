// Internal push API: trusted services (the event ingress, operators, later the bridges) post events into a
// room. Authenticated with INTERNAL_API_TOKEN; bodies are event envelopes checked with the shared schemas.
import { Hono } from "hono";
import { type Envelope, parseEventJson } from "../../../shared/envelope.ts";
import { checkRoomId } from "../../../shared/names.ts";
import { errorResponse } from "../auth/errors.ts";
import type { AppEnv } from "../env.ts";
import { isRoomEvent, roomIdOfEvent } from "../rooms/room-events.ts";
import { requireInternalToken } from "./auth.ts";

export const internalRoutes = new Hono<AppEnv>();

internalRoutes.use("/internal/*", requireInternalToken());

/**
 * POST /internal/rooms/:roomId/events — body: one envelope of type `stream.*` or `media.*`.
 * 200 `{ applied: true }` the first time an event id is seen, `{ applied: false }` for a repeat (no effect).
 */
internalRoutes.post("/internal/rooms/:roomId/events", async (c) => {
  const roomId = c.req.param("roomId");
  const check = checkRoomId(roomId);
  if (!check.ok) return errorResponse(400, "invalid_room_id", check.reason);
  const parsed = parseEventJson(await c.req.text());
  if (!parsed.ok) return errorResponse(400, "invalid_event", parsed.error);
  const event: Envelope = parsed.event;
  if (!isRoomEvent(event)) return errorResponse(400, "unsupported_event", `rooms take stream.* and media.* events, not '${event.type}'`);
  const target = roomIdOfEvent(event);
  if (target !== undefined && target !== roomId) {
    return errorResponse(400, "room_mismatch", `event is for room '${target}', posted to room '${roomId}'`);
  }
  const result = await c.env.Room.getByName(roomId).applyEvent(event);
  return c.json(result);
});
