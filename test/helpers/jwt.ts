// Test JWTs, minted with jose the way an identity provider would: HS256 with a shared secret, or RS256/ES256
// with a generated key pair published as a JWKS (serve it with test/edge/jwks-server.ts from Node tests, or hand it to
// createLocalJWKSet inside workerd). Web-standard only, so edge tests running inside workerd can import it.
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from "jose";

export interface MintOptions {
  sub?: string;
  /** seconds from now; negative for an expired token; null for no `exp` at all */
  expiresIn?: number | null;
  /** `nbf` as seconds from now */
  notBeforeIn?: number;
  iss?: string;
  aud?: string | string[];
  /** extra claims: role, name, avatar, room, rooms, ... */
  claims?: JWTPayload;
  kid?: string;
}

function payload(opts: MintOptions): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  const p: JWTPayload = { ...opts.claims, iat: now };
  if (opts.sub !== undefined) p.sub = opts.sub;
  if (opts.expiresIn !== null) p.exp = now + (opts.expiresIn ?? 3600);
  if (opts.notBeforeIn !== undefined) p.nbf = now + opts.notBeforeIn;
  if (opts.iss !== undefined) p.iss = opts.iss;
  if (opts.aud !== undefined) p.aud = opts.aud;
  return p;
}

/** An HS256 token signed with `secret` (in tests: TEST_SECRETS.JWT_SECRET / env.JWT_SECRET). */
export function mintHs256(secret: string, opts: MintOptions = {}): Promise<string> {
  return new SignJWT(payload({ sub: "user-1", ...opts }))
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(new TextEncoder().encode(secret));
}

/** A token with `alg: none` and no signature (must always be refused). */
export function mintUnsigned(opts: MintOptions = {}): string {
  const b64 = (v: unknown) => btoa(JSON.stringify(v)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `${b64({ alg: "none", typ: "JWT" })}.${b64(payload({ sub: "user-1", ...opts }))}.`;
}

export interface TestKeyPair {
  alg: "RS256" | "ES256";
  kid: string;
  privateKey: CryptoKey;
  /** the public key as a JWK with kid/alg/use set, ready for a JWKS */
  publicJwk: JWK;
  mint(opts?: MintOptions): Promise<string>;
}

/** A fresh RS256 or ES256 key pair and a minting function for it. */
export async function testKeyPair(alg: "RS256" | "ES256", kid = `${alg.toLowerCase()}-${crypto.randomUUID().slice(0, 8)}`): Promise<TestKeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return {
    alg,
    kid,
    privateKey,
    publicJwk,
    mint: (opts = {}) =>
      new SignJWT(payload({ sub: "user-1", ...opts }))
        .setProtectedHeader({ alg, kid: opts.kid ?? kid, typ: "JWT" })
        .sign(privateKey),
  };
}

/** A JWKS document for the given key pairs. */
export function jwksOf(...pairs: TestKeyPair[]): { keys: JWK[] } {
  return { keys: pairs.map((p) => p.publicJwk) };
}
