// The front Worker's checks for every request routed to a partyserver object (`/parties/<party>/<name>`),
// run before the request reaches the object. partyserver trusts whatever reaches the object (its `x-partykit-*`
// headers, a client-chosen `_pk` connection id, the full URL), so the object must only ever see a verified user
// in a header only this code sets, a connection id chosen here, and a URL without the token (the URL is kept in
// each socket's 16 KiB hibernation attachment).
import { checkRoomId, checkUserId } from "../../../shared/names.ts";
import type { Env } from "../env.ts";
import { encodeVerifiedUser, roomAllowed, VERIFIED_CLAIMS_HEADER } from "./claims.ts";
import { errorResponse } from "./errors.ts";
import { APP_SUBPROTOCOL, extractToken, isUpgrade as isUpgradeRequest, TOKEN_HINT, TOKEN_SUBPROTOCOL_PREFIX } from "./token.ts";
import { type VerifyOptions, verifyJwt } from "./verify.ts";

/** The parties clients may reach, by their URL segment. Any other Durable Object binding is never routable. */
export const PUBLIC_PARTIES = ["room", "inbox"] as const;
export type PublicParty = (typeof PUBLIC_PARTIES)[number];

/**
 * Query parameters passed on to the object; everything else (notably `token` and the client's `_pk`) is dropped.
 * `since`: last chat message id a reconnecting client saw. `before`/`limit`: history paging.
 */
const FORWARDED_QUERY = new Set(["since", "before", "limit"]);

export function isPublicParty(segment: string | undefined): segment is PublicParty {
  return (PUBLIC_PARTIES as readonly string[]).includes(segment ?? "");
}

/** Deletes every header a client could use to impersonate the Worker towards an object. */
export function stripInternalHeaders(headers: Headers): void {
  for (const name of [...headers.keys()]) {
    if (name.startsWith("x-partykit-") || name === VERIFIED_CLAIMS_HEADER) headers.delete(name);
  }
}

/**
 * partyserver names the object by the raw path segment, so `auth0%7Cabc` (what encodeURIComponent makes of
 * `auth0|abc`) and `auth0|abc` would be two different objects, and only the second is the one the event
 * ingress reaches by user id. Decode the name segment once, here, when the decoded name is valid for its
 * party; otherwise leave it as it is for guardPartyRequest to refuse. Returns null for undecodable escapes.
 */
export function normalizePartyUrl(url: URL, party: PublicParty): URL | null {
  const parts = url.pathname.split("/"); // ["", "parties", party, name, ...]
  const raw = parts[3];
  if (raw === undefined || !raw.includes("%")) return url;
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return null;
  }
  if (!(party === "room" ? checkRoomId(decoded) : checkUserId(decoded)).ok) return url;
  const normalized = new URL(url);
  normalized.pathname = [...parts.slice(0, 3), decoded, ...parts.slice(4)].join("/");
  return normalized;
}

/**
 * Checks one party request (upgrade or plain HTTP) and returns the request to forward, or the refusal.
 * `party`/`name` are the raw path segments routePartykitRequest matched.
 */
export async function guardPartyRequest(
  req: Request,
  env: Env,
  party: string,
  name: string,
  opts: VerifyOptions = {},
): Promise<Request | Response> {
  if (!isPublicParty(party)) return errorResponse(404, "not_found", `no party '${party}'`);
  const nameCheck = party === "room" ? checkRoomId(name) : checkUserId(name);
  if (!nameCheck.ok) return errorResponse(400, party === "room" ? "invalid_room_id" : "invalid_user_id", nameCheck.reason);

  const found = extractToken(req);
  if (!found) return errorResponse(401, "missing_token", `no token: ${TOKEN_HINT}`);
  const verified = await verifyJwt(env, found.token, opts);
  if (!verified.ok) return errorResponse(verified.status, verified.error.code, verified.error.message);
  const user = verified.user;

  if (party === "room" && !roomAllowed(user, name)) {
    return errorResponse(403, "room_forbidden", `this token does not allow room '${name}'`);
  }
  if (party === "inbox" && user.userId !== name) {
    return errorResponse(403, "inbox_forbidden", "only the inbox owner's token may connect to it");
  }

  const incoming = new URL(req.url);
  const url = new URL(incoming.pathname, incoming.origin);
  for (const [k, v] of incoming.searchParams) if (FORWARDED_QUERY.has(k)) url.searchParams.set(k, v.slice(0, 32));
  const isUpgrade = isUpgradeRequest(req);
  // partyserver takes the connection id from `_pk`: choose it here so ids are unique and unguessable.
  if (isUpgrade) url.searchParams.set("_pk", crypto.randomUUID());

  const headers = new Headers(req.headers);
  stripInternalHeaders(headers);
  headers.delete("authorization");
  headers.set(VERIFIED_CLAIMS_HEADER, encodeVerifiedUser(user));
  return new Request(url, { method: req.method, headers, body: req.body, redirect: "manual" });
}

/**
 * The subprotocol to answer an upgrade with, if any. Browsers fail an upgrade whose answer is not one of the
 * protocols they offered, and fail one that offered protocols but got no answer.
 */
export function answerSubprotocol(req: Request): string | null {
  const offered = (req.headers.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim()).filter(Boolean);
  if (offered.length === 0) return null;
  if (offered.includes(APP_SUBPROTOCOL)) return APP_SUBPROTOCOL;
  // Echoing the token carrier is the only acceptable answer left; a client offering neither gets none (and fails).
  return offered.find((p) => p.startsWith(TOKEN_SUBPROTOCOL_PREFIX)) ?? null;
}
