// Where a client may put its JWT. Browsers cannot set headers on a WebSocket upgrade, so besides
// `Authorization: Bearer` we accept the token as a WebSocket subprotocol or a `token` query parameter.

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

/** Finds the caller's token: Authorization header first, then subprotocol, then `?token=`. */
export function extractToken(req: Request): ExtractedToken | null {
  const auth = req.headers.get("authorization");
  if (auth) {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m?.[1]) return { token: m[1].trim(), source: "header" };
  }
  const protocols = offeredProtocols(req);
  const carrier = protocols.find((p) => p.startsWith(TOKEN_SUBPROTOCOL_PREFIX));
  if (carrier) {
    // Answer with our app protocol when offered; otherwise the only acceptable answer is an offered value.
    const answerProtocol = protocols.includes(APP_SUBPROTOCOL) ? APP_SUBPROTOCOL : carrier;
    return { token: carrier.slice(TOKEN_SUBPROTOCOL_PREFIX.length), source: "subprotocol", answerProtocol };
  }
  const query = new URL(req.url).searchParams.get("token");
  if (query) return { token: query, source: "query" };
  return null;
}
