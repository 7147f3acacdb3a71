import { Hono } from "hono";
import type { Env } from "./env.ts";

/** The front Worker's HTTP surface. Each area mounts its own routes here. */
export function createApp() {
  const app = new Hono<{ Bindings: Env }>();
  app.get("/healthz", (c) => c.json({ ok: true }));
  return app;
}
