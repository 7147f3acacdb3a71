// What the front Worker knows about a caller once their JWT has been verified.
// The Worker passes it to Durable Objects in the VERIFIED_CLAIMS_HEADER, after deleting any client copy
// of that header, so an object can trust it (clients cannot reach an object except through the Worker).
import { z } from "zod";
import { checkUserId } from "../../../shared/names.ts";
import { webUrl, webUrlProblem } from "../../../shared/urls.ts";

export const VERIFIED_CLAIMS_HEADER = "x-pulsecast-verified-claims";

export const ROLES = ["viewer", "member", "moderator", "broadcaster"] as const;
export type Role = (typeof ROLES)[number];
/** Role of a token that carries no `role` claim. */
export const DEFAULT_ROLE: Role = "member";

export interface VerifiedUser {
  /** JWT `sub` */
  userId: string;
  role: Role;
  name?: string;
  avatar?: string;
  /** rooms this token may join: exact ids or patterns with a trailing `*`; absent means any room */
  rooms?: string[];
  /** token expiry, unix seconds (connections are not cut at expiry; reconnects need a fresh token) */
  exp: number;
}

/**
 * The claims Pulsecast reads from a verified JWT payload (standard ones are checked by jose before this).
 * `room` (one id or pattern) and `rooms` (a list) restrict where the token may connect; `picture` is
 * accepted as an alias of `avatar` because identity providers commonly issue it.
 */
const claimsSchema = z.object({
  sub: z.string(),
  exp: z.number().int(),
  role: z.enum(ROLES).optional(),
  name: z.string().max(100).optional(),
  // Checked as links below: a bad avatar is dropped, it does not cost the user their session.
  avatar: z.string().optional(),
  picture: z.string().optional(),
  room: z.string().min(1).max(129).optional(),
  rooms: z.array(z.string().min(1).max(129)).max(64).optional(),
});

export type ClaimsResult = { ok: true; user: VerifiedUser } | { ok: false; message: string };

/**
 * Turns a signature-checked JWT payload into a VerifiedUser, or says which claim is unusable. The avatar
 * (`avatar`, else `picture`) is shown to other users, so it is kept only when it is an https: link (or http:
 * with `allowHttpUrls`); anything else (`javascript:`, `data:`, a relative path) is dropped.
 */
export function userFromClaims(payload: unknown, opts: { allowHttpUrls: boolean } = { allowHttpUrls: false }): ClaimsResult {
  const parsed = claimsSchema.safeParse(payload);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, message: `claim '${issue?.path.join(".") || "?"}' is invalid: ${issue?.message ?? "unknown"}` };
  }
  const c = parsed.data;
  const sub = checkUserId(c.sub);
  if (!sub.ok) return { ok: false, message: `claim 'sub' is invalid: ${sub.reason}` };
  const rooms = c.rooms ?? (c.room !== undefined ? [c.room] : undefined);
  const user: VerifiedUser = { userId: c.sub, role: c.role ?? DEFAULT_ROLE, exp: c.exp };
  if (c.name !== undefined) user.name = c.name;
  const avatar = [c.avatar, c.picture].find((link) => link !== undefined && webUrlProblem(link, { allowHttp: opts.allowHttpUrls }) === null);
  if (avatar !== undefined) user.avatar = avatar;
  if (rooms !== undefined) user.rooms = rooms;
  return { ok: true, user };
}

/** Whether the token's room restriction (exact ids, or prefixes ending in `*`) lets it into `roomId`. */
export function roomAllowed(user: VerifiedUser, roomId: string): boolean {
  if (!user.rooms) return true;
  return user.rooms.some((pattern) => (pattern.endsWith("*") ? roomId.startsWith(pattern.slice(0, -1)) : pattern === roomId));
}

const forwardedUserSchema = z.object({
  userId: z.string().min(1).max(128),
  role: z.enum(ROLES),
  name: z.string().max(100).optional(),
  avatar: webUrl.optional(),
  rooms: z.array(z.string()).optional(),
  exp: z.number(),
});

/** The header value the front Worker sets after verification (ASCII-safe: header values must be). */
export function encodeVerifiedUser(user: VerifiedUser): string {
  // encodeURIComponent keeps non-ASCII display names intact through an HTTP header.
  return encodeURIComponent(JSON.stringify(user));
}

/**
 * For Durable Objects: the VerifiedUser the front Worker put on this request, or null when there is none
 * (then the request did not come through the Worker's auth and must be refused).
 */
export function userFromRequest(req: Request): VerifiedUser | null {
  const raw = req.headers.get(VERIFIED_CLAIMS_HEADER);
  if (!raw) return null;
  try {
    const parsed = forwardedUserSchema.safeParse(JSON.parse(decodeURIComponent(raw)));
    if (!parsed.success) return null;
    const u = parsed.data;
    const user: VerifiedUser = { userId: u.userId, role: u.role, exp: u.exp };
    if (u.name !== undefined) user.name = u.name;
    if (u.avatar !== undefined) user.avatar = u.avatar;
    if (u.rooms !== undefined) user.rooms = u.rooms;
    return user;
  } catch {
    return null;
  }
}
