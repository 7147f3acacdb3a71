// JWT verification for every client request, done in the front Worker before anything is routed.
//
// Keys: HS256 with JWT_SECRET, and/or RS256/ES256 through a JWKS at JWKS_URL (fetched by jose, cached per
// isolate). The token's `alg` picks the key source, and each source has its own algorithm allow-list, so an
// RS256 public key can never be used as an HMAC secret and `alg: none` is never accepted.
import { createRemoteJWKSet, decodeProtectedHeader, type JWTVerifyGetKey, type JWTVerifyOptions, jwtVerify } from "jose";
import { utf8, utf8ByteLength } from "../../../shared/encoding.ts";
import { edgeSettings } from "../settings.ts";
import { userFromClaims, type VerifiedUser } from "./claims.ts";
import { TOKEN_HINT } from "./token.ts";

/** Tokens longer than this are refused before any parsing (headers, URLs and attachments stay small). */
export const MAX_TOKEN_BYTES = 8 * 1024;

const HMAC_ALGS = ["HS256"];
const JWKS_ALGS = ["RS256", "ES256"];

export type VerifyResult =
  | { ok: true; user: VerifiedUser }
  | { ok: false; status: 401; error: { code: string; message: string } };

export interface VerifyOptions {
  /** key set to use instead of fetching JWKS_URL (tests inside workerd, which has no local JWKS server) */
  jwks?: JWTVerifyGetKey;
  /** the time to check `exp`/`nbf` against (tests) */
  now?: Date;
}

// One remote key set per URL per isolate: jose caches keys inside it and refetches on an unknown `kid`
// (with a cooldown), so a key rotation at the provider is picked up without a deploy.
const remoteKeySets = new Map<string, JWTVerifyGetKey>();
function remoteKeySet(url: string): JWTVerifyGetKey {
  let set = remoteKeySets.get(url);
  if (!set) {
    set = createRemoteJWKSet(new URL(url), { timeoutDuration: 5_000, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 });
    remoteKeySets.set(url, set);
  }
  return set;
}

const fail = (code: string, message: string): VerifyResult => ({ ok: false, status: 401, error: { code, message } });


/** Maps jose's error codes to ours (README "Error codes"). */
function describeJoseError(error: unknown): VerifyResult {
  const code = (error as { code?: string })?.code;
  const claim = (error as { claim?: string })?.claim;
  switch (code) {
    case "ERR_JWT_EXPIRED":
      return fail("token_expired", "token has expired");
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      if (claim === "nbf") return fail("token_not_yet_valid", "token is not valid yet (nbf)");
      if (claim === "aud") return fail("wrong_audience", "token audience is missing or does not match");
      if (claim === "iss") return fail("wrong_issuer", "token issuer is missing or does not match");
      return fail("invalid_claims", `token claim '${claim ?? "?"}' is missing or invalid`);
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return fail("bad_signature", "token signature does not verify");
    case "ERR_JOSE_ALG_NOT_ALLOWED":
    case "ERR_JOSE_NOT_SUPPORTED":
      return fail("alg_not_allowed", "token algorithm is not accepted");
    case "ERR_JWKS_NO_MATCHING_KEY":
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
      return fail("unknown_key", "no key in the JWKS matches the token");
    case "ERR_JWKS_TIMEOUT":
    case "ERR_JWKS_INVALID":
      return fail("jwks_unavailable", "the key set could not be fetched; try again");
    case "ERR_JWS_INVALID":
    case "ERR_JWT_INVALID":
      return fail("malformed_token", "token is not a well-formed JWT");
    default:
      // fetch failures of the JWKS surface as plain errors
      return fail("jwks_unavailable", "token could not be checked: the key set is unavailable");
  }
}

/**
 * Verifies a client JWT. Never throws: every refusal is a 401 with a stable error code.
 * `exp` and `sub` are required; `iss`/`aud` are checked when JWT_ISSUER/JWT_AUDIENCE are set; `nbf` when present.
 */
export async function verifyJwt(env: object, token: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const settings = edgeSettings(env);
  if (!token) return fail("missing_token", `no token: ${TOKEN_HINT}`);
  if (utf8ByteLength(token, MAX_TOKEN_BYTES) > MAX_TOKEN_BYTES) return fail("token_too_large", `token is larger than ${MAX_TOKEN_BYTES} bytes`);
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/.test(token)) return fail("malformed_token", "token is not a well-formed JWT");

  let alg: string | undefined;
  try {
    alg = decodeProtectedHeader(token).alg;
  } catch {
    return fail("malformed_token", "token header is not valid base64url JSON");
  }

  let key: Uint8Array | JWTVerifyGetKey;
  let algorithms: string[];
  if (alg !== undefined && HMAC_ALGS.includes(alg)) {
    if (!settings.jwtSecret) return fail("alg_not_allowed", "HS256 tokens are not accepted here (JWT_SECRET is not set)");
    key = utf8(settings.jwtSecret);
    algorithms = HMAC_ALGS;
  } else if (alg !== undefined && JWKS_ALGS.includes(alg)) {
    const jwks = opts.jwks ?? (settings.jwksUrl ? remoteKeySet(settings.jwksUrl) : undefined);
    if (!jwks) return fail("alg_not_allowed", `${alg} tokens are not accepted here (JWKS_URL is not set)`);
    key = jwks;
    algorithms = JWKS_ALGS;
  } else {
    return fail("alg_not_allowed", `token algorithm '${alg ?? "(none)"}' is not accepted`);
  }

  const options: JWTVerifyOptions = { algorithms, requiredClaims: ["exp", "sub"], clockTolerance: settings.jwtClockToleranceS };
  if (settings.jwtIssuer.length) options.issuer = settings.jwtIssuer;
  if (settings.jwtAudience.length) options.audience = settings.jwtAudience;
  if (opts.now) options.currentDate = opts.now;

  let payload: unknown;
  try {
    // Two calls because jose's overloads differ for a key and a key-set function.
    payload = key instanceof Uint8Array ? (await jwtVerify(token, key, options)).payload : (await jwtVerify(token, key, options)).payload;
  } catch (error) {
    return describeJoseError(error);
  }
  const claims = userFromClaims(payload, { allowHttpUrls: settings.allowHttpUrls });
  if (!claims.ok) return fail("invalid_claims", claims.message);
  return { ok: true, user: claims.user };
}
