// Token handling shared by the room and inbox clients. The browser WebSocket API cannot set headers, so the
// JWT travels as a subprotocol (`bearer.<JWT>`, offered beside `pulsecast.v1`); it never goes into the URL.

export const APP_SUBPROTOCOL = "pulsecast.v1";
export const TOKEN_SUBPROTOCOL_PREFIX = "bearer.";

/** Why the client asks for a token: the first connect, a reconnect, or after the server refused the last one. */
export type TokenReason = "connect" | "reconnect" | "refused";

/** A fixed token, or a callback the client calls before every connection attempt (it may cache). */
export type TokenSource = string | ((reason: TokenReason) => string | Promise<string>);

export async function resolveToken(source: TokenSource, reason: TokenReason): Promise<string> {
  const token = typeof source === "string" ? source : await source(reason);
  if (typeof token !== "string" || token.length === 0) throw new Error("the token callback returned no token");
  return token;
}

export function subprotocols(token: string): string[] {
  return [APP_SUBPROTOCOL, `${TOKEN_SUBPROTOCOL_PREFIX}${token}`];
}

/** The `exp` claim of a JWT (unix seconds), or undefined when it has none or is not a JWT. Not verified. */
export function tokenExpiry(token: string): number | undefined {
  const part = token.split(".")[1];
  if (!part) return undefined;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === "number" ? exp : undefined;
  } catch {
    return undefined;
  }
}

/** A refusal the server explained over HTTP (`{ error: { code, message } }`), e.g. token_expired, banned. */
export interface ServerRefusal {
  status: number;
  code: string;
  message: string;
}

/** Reads the edge's JSON error body; falls back to the status line when the body is not one. */
export async function refusalOf(res: Response): Promise<ServerRefusal> {
  let code = `http_${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } | string; message?: unknown; code?: unknown };
    const err = typeof body.error === "object" && body.error ? body.error : body;
    if (typeof err.code === "string") code = err.code;
    else if (typeof body.error === "string") code = body.error;
    if (typeof err.message === "string") message = err.message;
  } catch {
    /* not JSON: keep the status line */
  }
  return { status: res.status, code, message };
}
