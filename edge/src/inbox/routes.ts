import { Hono } from "hono";
import type { AppEnv } from "../env.ts";

/** HTTP routes of the per-user inbox (list, unread count, mark-read; internal notify). Mounted by app.ts. */
export const inboxRoutes = new Hono<AppEnv>();
