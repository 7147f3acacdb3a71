import { z } from "zod";
import { mediaId, url } from "./common.ts";

export const transcriptionComplete = z.object({
  mediaId,
  language: z.string().min(2).max(16),
  vttUrl: url.optional(),
  text: z.string().max(100_000).optional(),
});
