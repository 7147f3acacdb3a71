// Internal push API: trusted services (the event ingress, operators, later the bridges) post events into a
// room. Authenticated with INTERNAL_API_TOKEN; bodies are event envelopes checked with the shared schemas.
import { Hono } from "hono";
import { type Envelope, MAX_EVENT_BYTES, parseEventJson } from "../../../shared/envelope.ts";
import { checkRoomId } from "../../../shared/names.ts";
import { errorResponse } from "../auth/errors.ts";
import { roomEventTarget } from "../bigrooms/route.ts";
import type { AppEnv } from "../env.ts";
import { bodyTextOr413 } from "../http/body.ts";
import { linkProblem } from "../http/links.ts";
import { edgeSettings } from "../settings.ts";
import { isRoomEvent, roomIdOfEvent } from "../rooms/room-events.ts";
import { requireInternalToken } from "./auth.ts";

export const internalRoutes = new Hono<AppEnv>();

internalRoutes.use("/internal/*", requireInternalToken());

/**
 * POST /internal/rooms/:roomId/events — body: one envelope of type `stream.*` or `media.*`, at most
 * MAX_EVENT_BYTES (413 `body_too_large`, checked on Content-Length and while streaming, before parsing).
 * 200 `{ applied: true }` the first time an event id is seen, `{ applied: false }` for a repeat (no effect).
 */
internalRoutes.post("/internal/rooms/:roomId/events", async (c) => {
  const roomId = c.req.param("roomId");
  const check = checkRoomId(roomId);
  if (!check.ok) return errorResponse(400, "invalid_room_id", check.reason);
  const read = await bodyTextOr413(c.req.raw, MAX_EVENT_BYTES);
  if ("response" in read) return read.response;
  const parsed = parseEventJson(read.text);
  if (!parsed.ok) return errorResponse(400, "invalid_event", parsed.error);
  const event: Envelope = parsed.event;
  const badLink = linkProblem(event, edgeSettings(c.env));
  if (badLink) return errorResponse(400, "url_not_allowed", badLink);
  if (!isRoomEvent(event)) return errorResponse(400, "unsupported_event", `rooms take stream.* and media.* events, not '${event.type}'`);
  const target = roomIdOfEvent(event);
  if (target !== undefined && target !== roomId) {
    return errorResponse(400, "room_mismatch", `event is for room '${target}', posted to room '${roomId}'`);
  }
  const result = await roomEventTarget(c.env, roomId).applyEvent(event);
  return c.json(result);
});
