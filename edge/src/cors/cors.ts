// CORS for the HTTP routes browsers call directly: room history (`/parties/room/<id>/history`) and the inbox
// (`/inbox`, `/inbox/unread`, `/inbox/read`). Callers authenticate with `Authorization: Bearer`, never cookies,
// so no credentials mode is needed and `*` is a safe default; set CORS_ORIGINS to a list to narrow it.
// WebSocket upgrades are left alone: CORS does not apply to them and their 101 response must not be rewritten.
import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import type { AppEnv } from "../env.ts";
import { edgeSettings } from "../settings.ts";

/** CORS_ORIGINS (default `*`): `*`, or comma-separated origins such as `https://app.example.com`. */
export function allowedOrigins(value: string | undefined): "*" | string[] {
  const list = (value ?? "*").split(",").map((s) => s.trim()).filter(Boolean);
  return list.length === 0 || list.includes("*") ? "*" : list;
}

/**
 * CORS for browser-facing routes, with CORS_ORIGINS. `methods` are the ones the routes take (the streams and videos
 * APIs also PATCH and DELETE); the default fits history and the inbox.
 */
export function browserCors(methods: string[] = ["GET", "POST", "OPTIONS"]): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (c.req.header("upgrade")?.toLowerCase() === "websocket") return next();
    const origins = allowedOrigins(edgeSettings(c.env).corsOrigins.join(","));
    return cors({
      origin: origins === "*" ? "*" : (origin) => (origins.includes(origin) ? origin : null),
      allowMethods: methods,
      allowHeaders: ["Authorization", "Content-Type"],
      maxAge: 600,
    })(c, next);
  };
}

/** The methods of the JSON APIs (streams, videos). */
export const API_METHODS = ["GET", "POST", "PATCH", "DELETE", "OPTIONS"];
