// Hono middleware for JWT-protected HTTP routes: verifies the caller's token and sets `c.var.user`.
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env.ts";
import { errorResponse } from "./errors.ts";
import { extractToken, TOKEN_HINT } from "./token.ts";
import { verifyJwt } from "./verify.ts";

/** Refuses the request with 401 + JSON unless it carries a valid JWT; afterwards `c.var.user` is set. */
export function requireUser() {
  return createMiddleware<AppEnv>(async (c, next) => {
    const found = extractToken(c.req.raw);
    if (!found) return errorResponse(401, "missing_token", `no token: ${TOKEN_HINT}`);
    const result = await verifyJwt(c.env, found.token);
    if (!result.ok) return errorResponse(result.status, result.error.code, result.error.message);
    c.set("user", result.user);
    await next();
  });
}
