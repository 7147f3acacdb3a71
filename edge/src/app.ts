import { Hono } from "hono";
import type { AppEnv } from "./env.ts";
import { inboxRoutes } from "./inbox/routes.ts";
import { ingressRoutes } from "./ingress/routes.ts";

/** The front Worker's HTTP surface. Each area mounts its own routes here. */
export function createApp() {
  const app = new Hono<AppEnv>();
  app.get("/healthz", (c) => c.json({ ok: true }));
  app.route("/", inboxRoutes);
  app.route("/", ingressRoutes);
  return app;
}
