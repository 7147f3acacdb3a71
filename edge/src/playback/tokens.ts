// Viewer tokens for signed streams: HS256 JWTs (jose) whose header names the signing key (`kid`), so keys rotate
// by adding a new first key and dropping the old one once its tokens have expired. The token travels in the
// playback path (`/play/<token>/live.m3u8`), so relative URIs in playlists inherit it and playlists stay
// byte-identical for every viewer.
import { decodeProtectedHeader, errors, jwtVerify, SignJWT } from "jose";
import { utf8 } from "../../../shared/encoding.ts";
import type { SigningKey } from "../settings.ts";

/** `aud` of every viewer token: a client JWT or any other token of ours can never pass as one. */
export const PLAYBACK_AUDIENCE = "pulsecast:play";
/** Tokens longer than this are refused before parsing (they sit in a URL path). */
export const MAX_PLAYBACK_TOKEN_LENGTH = 2048;
const CLOCK_TOLERANCE_S = 5;

export interface PlaybackClaims {
  /** stream or video id */
  sub: string;
  exp: number;
  nbf: number;
  iat: number;
  /** viewer id, when the minter named one (for audit and per-viewer limits) */
  vid?: string;
}

export interface MintRequest {
  /** the stream's or the video's id (the token's `sub`) */
  streamId: string;
  /** unix seconds */
  exp: number;
  nbf: number;
  viewerId?: string;
}

export async function mintPlaybackToken(keys: readonly SigningKey[], req: MintRequest): Promise<{ token: string; kid: string }> {
  const key = keys[0];
  if (!key) throw new Error("no playback signing key configured");
  const claims: Record<string, unknown> = { nbf: req.nbf };
  if (req.viewerId !== undefined) claims.vid = req.viewerId;
  const token = await new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", kid: key.kid, typ: "JWT" })
    .setSubject(req.streamId)
    .setAudience(PLAYBACK_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(req.exp)
    .sign(utf8(key.secret));
  return { token, kid: key.kid };
}

export type TokenRefusal = { status: 401; code: "token_malformed" | "token_unknown_kid" | "token_bad_algorithm" | "token_invalid" | "token_expired" | "token_not_yet_valid"; message: string };
export type TokenCheck = { ok: true; claims: PlaybackClaims } | ({ ok: false } & TokenRefusal);

const refuse = (code: TokenRefusal["code"], message: string): TokenCheck => ({ ok: false, status: 401, code, message });

// Verified tokens per isolate, until they expire: a player asks for a segment every few seconds with the same
// token, and one HMAC per request is wasted work. Bounded; the oldest entries go first.
const verified = new Map<string, PlaybackClaims>();
const VERIFIED_MAX = 5000;

/** Checks signature, algorithm, key id, audience and time window. Which stream it is for is the caller's check. */
export async function verifyPlaybackToken(keys: readonly SigningKey[], token: string, nowS = Math.floor(Date.now() / 1000)): Promise<TokenCheck> {
  if (token.length > MAX_PLAYBACK_TOKEN_LENGTH) return refuse("token_malformed", "token is too long");
  const hit = verified.get(token);
  if (hit) {
    if (hit.exp + CLOCK_TOLERANCE_S < nowS) {
      verified.delete(token);
      return refuse("token_expired", "token has expired");
    }
    if (hit.nbf - CLOCK_TOLERANCE_S > nowS) return refuse("token_not_yet_valid", "token is not valid yet (nbf)");
    return { ok: true, claims: hit };
  }
  let header: { alg?: unknown; kid?: unknown };
  try {
    header = decodeProtectedHeader(token);
  } catch {
    return refuse("token_malformed", "not a JWT");
  }
  if (header.alg !== "HS256") return refuse("token_bad_algorithm", `algorithm '${String(header.alg)}' is not accepted; viewer tokens are HS256`);
  const key = keys.find((k) => k.kid === header.kid);
  if (!key) return refuse("token_unknown_kid", "the token's signing key (kid) is unknown or retired");
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, utf8(key.secret), {
      algorithms: ["HS256"],
      audience: PLAYBACK_AUDIENCE,
      requiredClaims: ["sub", "exp", "nbf"],
      clockTolerance: CLOCK_TOLERANCE_S,
      currentDate: new Date(nowS * 1000),
    }));
  } catch (error) {
    if (error instanceof errors.JWTExpired) return refuse("token_expired", "token has expired");
    if (error instanceof errors.JWTClaimValidationFailed && error.claim === "nbf") return refuse("token_not_yet_valid", "token is not valid yet (nbf)");
    if (error instanceof errors.JWTClaimValidationFailed) return refuse("token_invalid", `claim '${error.claim}' is invalid`);
    return refuse("token_invalid", "signature does not verify");
  }
  if (typeof payload.sub !== "string" || typeof payload.exp !== "number" || typeof payload.nbf !== "number") return refuse("token_invalid", "sub/exp/nbf have the wrong type");
  const claims: PlaybackClaims = { sub: payload.sub, exp: payload.exp, nbf: payload.nbf, iat: typeof payload.iat === "number" ? payload.iat : 0 };
  if (typeof payload.vid === "string") claims.vid = payload.vid;
  if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!);
  verified.set(token, claims);
  return { ok: true, claims };
}

/** A token looks like `a.b.c`; playback ids (stream and video ids) never contain a dot. */
export function looksLikeToken(segment: string): boolean {
  return segment.split(".").length === 3;
}
