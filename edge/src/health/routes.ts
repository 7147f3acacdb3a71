import { Hono } from "hono";
import type { AppEnv } from "../env.ts";

/** Liveness of the front Worker (no storage touched; load balancers and the test harness poll it). */
export const healthRoutes = new Hono<AppEnv>();
healthRoutes.get("/healthz", (c) => c.json({ ok: true }));
