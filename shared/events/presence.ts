import { z } from "zod";
import { roomId, userId } from "./common.ts";

export const presenceUpdate = z.object({
  roomId,
  userId,
  change: z.enum(["join", "leave", "update"]),
  connections: z.number().int().nonnegative(),
  state: z.record(z.string(), z.unknown()).optional(),
});
