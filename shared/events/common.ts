import { z } from "zod";
import { ROOM_ID_PATTERN, STREAM_ID_PATTERN, USER_ID_PATTERN } from "../names.ts";
import { webUrl } from "../urls.ts";

// Field types reused by several event schemas.
export const streamId = z.string().regex(STREAM_ID_PATTERN, "not a valid stream id");
export const roomId = z.string().regex(ROOM_ID_PATTERN, "not a valid room id");
export const userId = z.string().regex(USER_ID_PATTERN, "not a valid user id");
export const mediaId = z.string().min(1).max(128);
/** A link for users: absolute http: or https: only (see shared/urls.ts). */
export const url = webUrl;
export const isoTime = z.string().datetime({ offset: true });

export const rendition = z.object({
  name: z.string().max(32),
  width: z.number().int().positive().optional(),
  height: z.number().int().positive().optional(),
  bandwidth: z.number().int().positive(),
  codecs: z.string().max(128).optional(),
});

export type Rendition = z.infer<typeof rendition>;

/**
 * An object key in the media bucket (`live/<streamId>/<broadcastId>/master.m3u8`): events name storage, and the
 * edge builds the playback URL a viewer may use (public or signed) from it.
 */
export const storageKey = z.string().min(1).max(1024).regex(/^[A-Za-z0-9_=+,@~-][A-Za-z0-9_.=+,@~\/-]*$/, "not a storage key").refine((k) => !k.split("/").some((s) => s === "" || s.startsWith(".")), "storage key has an empty or dot segment");
