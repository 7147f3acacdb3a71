// The fleet for operators and tests: `GET /internal/fleet` (Bearer INTERNAL_API_TOKEN) lists every media node the
// edge has heard from, its state (ready / draining / unhealthy / gone), load, and the streams it carries, plus the
// streams handed to a node a moment ago.
import { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { requireInternalToken } from "../internal/auth.ts";
import { fleetObject } from "./fleet-object.ts";

export const fleetRoutes = new Hono<AppEnv>();

fleetRoutes.get("/internal/fleet", requireInternalToken(), async (c) => c.json(await fleetObject(c.env).view()));
