import { z } from "zod";
import { roomId, userId } from "./common.ts";

/** A chat message as stored by a room, forwarded to the media side (e.g. a moderation worker). */
export const chatMessage = z.object({
  roomId,
  messageId: z.number().int().positive(),
  userId,
  name: z.string().max(100).optional(),
  text: z.string().max(4000),
  at: z.number().int().nonnegative(),
});
