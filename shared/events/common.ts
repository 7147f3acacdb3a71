import { z } from "zod";
import { ROOM_ID_PATTERN, STREAM_ID_PATTERN, USER_ID_PATTERN } from "../names.ts";

// Field types reused by several event schemas.
export const streamId = z.string().regex(STREAM_ID_PATTERN, "not a valid stream id");
export const roomId = z.string().regex(ROOM_ID_PATTERN, "not a valid room id");
export const userId = z.string().regex(USER_ID_PATTERN, "not a valid user id");
export const mediaId = z.string().min(1).max(128);
export const url = z.string().url().max(2048);
export const isoTime = z.string().datetime({ offset: true });

export const rendition = z.object({
  name: z.string().max(32),
  width: z.number().int().positive().optional(),
  height: z.number().int().positive().optional(),
  bandwidth: z.number().int().positive(),
  codecs: z.string().max(128).optional(),
});

export type Rendition = z.infer<typeof rendition>;
