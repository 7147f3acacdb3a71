// Dev sign-in: local runs need tokens without an identity provider, so with DEV_SIGN_IN=true the pages may ask
// the Worker to mint one (HS256 with JWT_SECRET) for any name. Off (404) unless the setting is on; production
// config keeps it off and apps hand the pages their own JWTs (README "Pages: sign-in").
import { Hono } from "hono";
import { SignJWT } from "jose";
import { z } from "zod";
import { USER_ID_PATTERN } from "../../../shared/names.ts";
import { errorResponse } from "../auth/errors.ts";
import { ROLES } from "../auth/claims.ts";
import type { AppEnv } from "../env.ts";
import { bodyTextOr413 } from "../http/body.ts";
import { edgeSettings } from "../settings.ts";

/** Lifetime of a dev token: long enough for a session, short enough that refresh paths get exercised. */
export const DEV_TOKEN_TTL_S = 3600;

const signInRequest = z.object({
  name: z.string().trim().min(1, "name is empty").max(100),
  /** defaults to a slug of the name */
  userId: z.string().regex(USER_ID_PATTERN, "not a valid user id").optional(),
  role: z.enum(ROLES).optional(),
  /** seconds; for tests of expiry and refresh */
  ttlS: z.number().int().min(-3600).max(DEV_TOKEN_TTL_S).optional(),
});

/** A user id from a display name: lower-case letters, digits and dashes. */
export function slugUserId(name: string): string {
  const slug = name.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 48);
  return slug || "user";
}

export const devRoutes = new Hono<AppEnv>();

devRoutes.use("/dev/*", async (c, next) => {
  if (!edgeSettings(c.env).devSignIn) return errorResponse(404, "not_found", "no such route");
  return next();
});

/** GET /dev/sign-in — 200 when dev sign-in is on (the pages then offer it), 404 otherwise. */
devRoutes.get("/dev/sign-in", (c) => c.json({ enabled: true, roles: ROLES }));

/** POST /dev/sign-in `{ name, userId?, role? }` → `{ token, userId, expiresAt }`. */
devRoutes.post("/dev/sign-in", async (c) => {
  const secret = edgeSettings(c.env).jwtSecret;
  if (!secret) return errorResponse(503, "no_jwt_secret", "dev sign-in needs JWT_SECRET to sign with");
  const read = await bodyTextOr413(c.req.raw, 4096);
  if ("response" in read) return read.response;
  let body: unknown;
  try {
    body = JSON.parse(read.text);
  } catch {
    return errorResponse(400, "bad_json", "body is not valid JSON");
  }
  const req = signInRequest.safeParse(body);
  if (!req.success) {
    const issue = req.error.issues[0];
    return errorResponse(400, "invalid_request", `${issue?.path.join(".") || "body"}: ${issue?.message ?? "invalid"}`);
  }
  const { name, role } = req.data;
  const userId = req.data.userId ?? slugUserId(name);
  const now = Math.floor(Date.now() / 1000);
  const exp = now + (req.data.ttlS ?? DEV_TOKEN_TTL_S);
  const token = await new SignJWT({ name, ...(role ? { role } : {}) })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(userId)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(secret));
  return c.json({ token, userId, expiresAt: exp });
});
