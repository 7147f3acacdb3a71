// Authentication of the internal push API (server -> room, server -> user): a shared bearer token,
// INTERNAL_API_TOKEN, compared in constant time. Without the secret configured the API is closed.
import { createMiddleware } from "hono/factory";
import { utf8 } from "../../../shared/encoding.ts";
import { errorResponse } from "../auth/errors.ts";
import { bearerToken } from "../auth/token.ts";
import { edgeSettings } from "../settings.ts";
import type { AppEnv } from "../env.ts";

/** Constant-time string equality (timing reveals neither content nor a matching prefix). */
export function timingSafeEqualStrings(a: string, b: string): boolean {
  const x = utf8(a);
  const y = utf8(b);
  // Compare against the expected length always, so time depends only on the secret's length.
  let diff = x.length ^ y.length;
  for (let i = 0; i < y.length; i++) diff |= (x[i % Math.max(x.length, 1)] ?? 0) ^ y[i]!;
  return diff === 0;
}

/** Hono middleware: 401 JSON unless `Authorization: Bearer <INTERNAL_API_TOKEN>`; 503 when it is not configured. */
export function requireInternalToken() {
  return createMiddleware<AppEnv>(async (c, next) => {
    const expected = edgeSettings(c.env).internalApiToken;
    if (!expected) return errorResponse(503, "internal_api_disabled", "INTERNAL_API_TOKEN is not set; the internal API is closed");
    const given = bearerToken(c.req.header("authorization"));
    if (!given || !timingSafeEqualStrings(given, expected)) {
      return errorResponse(401, "invalid_internal_token", "missing or wrong internal API token");
    }
    await next();
  });
}
