import { Hono } from "hono";
import type { AppEnv } from "../env.ts";

/** Signed event ingress from the NATS->HTTP bridge (POST /hooks/events). Mounted by app.ts. */
export const ingressRoutes = new Hono<AppEnv>();
