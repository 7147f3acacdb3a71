// Where a client may put its JWT. Browsers cannot set headers on a WebSocket upgrade, so besides
// `Authorization: Bearer` we accept the token as a WebSocket subprotocol, and on an upgrade request only, as a
// `token` query parameter. Plain HTTP requests never take it from the URL: URLs end up in access logs, proxies
// and browser history, where a bearer token must not.

/** Subprotocol clients offer (beside the token) and the server answers with; see README "WebSocket protocol". */
export const APP_SUBPROTOCOL = "pulsecast.v1";
/** A subprotocol entry `bearer.<JWT>` carries the token (JWT characters are all valid in subprotocol names). */
export const TOKEN_SUBPROTOCOL_PREFIX = "bearer.";

export type TokenSource = "header" | "subprotocol" | "query";

export interface ExtractedToken {
  token: string;
  source: TokenSource;
  /** for `subprotocol`: the subprotocol to answer with so browsers accept the upgrade */
  answerProtocol?: string;
}

function offeredProtocols(req: Request): string[] {
  const header = req.headers.get("sec-websocket-protocol");
  if (!header) return [];
  return header.split(",").map((p) => p.trim()).filter(Boolean);
}

/** Where to put a token, for error messages. */
export const TOKEN_HINT = "use Authorization: Bearer (WebSocket upgrades may use the bearer.<JWT> subprotocol or ?token=)";

/** The token of an `Authorization: Bearer <token>` header value, or null when it is missing or another scheme. */
export function bearerToken(header: string | null | undefined): string | null {
  const m = /^Bearer\s+(.+)$/i.exec(header?.trim() ?? "");
  return m?.[1]?.trim() || null;
}

export function isUpgrade(req: Request): boolean {
  return req.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/** Finds the caller's token: Authorization header first, then subprotocol, then (upgrades only) `?token=`. */
export function extractToken(req: Request): ExtractedToken | null {
  const header = bearerToken(req.headers.get("authorization"));
  if (header) return { token: header, source: "header" };
  const protocols = offeredProtocols(req);
  const carrier = protocols.find((p) => p.startsWith(TOKEN_SUBPROTOCOL_PREFIX));
  if (carrier) {
    // Answer with our app protocol when offered; otherwise the only acceptable answer is an offered value.
    const answerProtocol = protocols.includes(APP_SUBPROTOCOL) ? APP_SUBPROTOCOL : carrier;
    return { token: carrier.slice(TOKEN_SUBPROTOCOL_PREFIX.length), source: "subprotocol", answerProtocol };
  }
  if (!isUpgrade(req)) return null;
  const query = new URL(req.url).searchParams.get("token");
  if (query) return { token: query, source: "query" };
  return null;
}
