import { z } from "zod";
import { url, userId } from "./common.ts";

export const notificationRequested = z.object({
  notificationId: z.string().min(1).max(128),
  userId,
  title: z.string().min(1).max(200),
  body: z.string().max(2000).optional(),
  url: url.optional(),
  kind: z.string().max(64).optional(),
  data: z.record(z.string(), z.unknown()).optional(),
});

export const notificationSent = z.object({
  notificationId: z.string().min(1).max(128),
  userId,
  /** `live`: delivered to this many open connections; `stored`: kept until the user next connects */
  channel: z.enum(["live", "stored", "push", "email"]),
  connections: z.number().int().nonnegative(),
});
