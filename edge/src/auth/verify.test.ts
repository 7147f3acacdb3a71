import { createLocalJWKSet, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { jwksOf, mintHs256, mintUnsigned, testKeyPair } from "../../../test/helpers/jwt.ts";
import type { Env } from "../env.ts";
import { env as testEnv } from "../../test/clients.ts";
import { roomAllowed } from "./claims.ts";
import { MAX_TOKEN_BYTES, verifyJwt } from "./verify.ts";

const SECRET = testEnv.JWT_SECRET!;
const base = { ...testEnv, JWKS_URL: "", JWT_ISSUER: "", JWT_AUDIENCE: "" } as Env;
const withChecks = { ...base, JWT_ISSUER: "https://id.example", JWT_AUDIENCE: "pulsecast" } as Env;

async function refusal(env: Env, token: string, opts = {}) {
  const result = await verifyJwt(env, token, opts);
  if (result.ok) throw new Error(`expected a refusal, got user ${JSON.stringify(result.user)}`);
  expect(result.status).toBe(401);
  return result.error;
}

describe("verifyJwt: HS256", () => {
  it("accepts a valid token and maps its claims to a VerifiedUser", async () => {
    const token = await mintHs256(SECRET, {
      sub: "alice",
      claims: { role: "moderator", name: "Alice", picture: "https://img.example/a.png", rooms: ["lobby", "team-*"] },
    });
    const result = await verifyJwt(base, token);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.user).toMatchObject({ userId: "alice", role: "moderator", name: "Alice", avatar: "https://img.example/a.png", rooms: ["lobby", "team-*"] });
    expect(roomAllowed(result.user, "lobby")).toBe(true);
    expect(roomAllowed(result.user, "team-red")).toBe(true);
    expect(roomAllowed(result.user, "other")).toBe(false);
  });

  it("defaults the role to member and takes a single `room` claim as a restriction", async () => {
    const result = await verifyJwt(base, await mintHs256(SECRET, { sub: "bob", claims: { room: "only-this" } }));
    expect(result.ok && result.user).toMatchObject({ userId: "bob", role: "member", rooms: ["only-this"] });
  });

  it("checks iss and aud when configured", async () => {
    expect((await verifyJwt(withChecks, await mintHs256(SECRET, { iss: "https://id.example", aud: "pulsecast" }))).ok).toBe(true);
    expect(await refusal(withChecks, await mintHs256(SECRET, { iss: "https://evil.example", aud: "pulsecast" }))).toMatchObject({ code: "wrong_issuer" });
    expect(await refusal(withChecks, await mintHs256(SECRET, { iss: "https://id.example", aud: "someone-else" }))).toMatchObject({ code: "wrong_audience" });
    expect(await refusal(withChecks, await mintHs256(SECRET, { iss: "https://id.example" }))).toMatchObject({ code: "wrong_audience" });
  });

  it("refuses an expired token, but allows the configured clock skew", async () => {
    expect(await refusal(base, await mintHs256(SECRET, { expiresIn: -120 }))).toEqual({ code: "token_expired", message: "token has expired" });
    expect((await verifyJwt(base, await mintHs256(SECRET, { expiresIn: -10 }))).ok).toBe(true);
    expect(await refusal({ ...base, JWT_CLOCK_TOLERANCE_S: "0" } as Env, await mintHs256(SECRET, { expiresIn: -10 }))).toMatchObject({ code: "token_expired" });
  });

  it("requires exp and sub", async () => {
    expect(await refusal(base, await mintHs256(SECRET, { expiresIn: null }))).toMatchObject({ code: "invalid_claims" });
    const noSub = await new SignJWT({ exp: Math.floor(Date.now() / 1000) + 60 }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET));
    expect(await refusal(base, noSub)).toMatchObject({ code: "invalid_claims" });
  });

  it("refuses a token that is not valid yet (nbf beyond the skew)", async () => {
    expect(await refusal(base, await mintHs256(SECRET, { notBeforeIn: 600 }))).toMatchObject({ code: "token_not_yet_valid" });
  });

  it("refuses a token signed with another key", async () => {
    expect(await refusal(base, await mintHs256("some-other-secret-entirely-0123456789"))).toMatchObject({ code: "bad_signature" });
  });

  it("refuses alg none and algorithms outside the allow-list", async () => {
    expect(await refusal(base, mintUnsigned())).toMatchObject({ code: "alg_not_allowed" });
    const hs512 = await new SignJWT({ sub: "x", exp: Math.floor(Date.now() / 1000) + 60 }).setProtectedHeader({ alg: "HS512" }).sign(new TextEncoder().encode(SECRET));
    expect(await refusal(base, hs512)).toMatchObject({ code: "alg_not_allowed" });
  });

  it("refuses malformed and oversized tokens before parsing them", async () => {
    for (const bad of ["", "abc", "a.b", "a.b.c.d", "!!!.???.***", "bm90IGpzb24.e30.sig"]) {
      const error = await refusal(base, bad);
      expect(["malformed_token", "missing_token"]).toContain(error.code);
    }
    const huge = await mintHs256(SECRET, { claims: { padding: "x".repeat(MAX_TOKEN_BYTES) } });
    expect(await refusal(base, huge)).toMatchObject({ code: "token_too_large" });
  });

  it("refuses unusable claims: bad role, unsafe sub", async () => {
    expect(await refusal(base, await mintHs256(SECRET, { claims: { role: "admin" } }))).toMatchObject({ code: "invalid_claims" });
    expect(await refusal(base, await mintHs256(SECRET, { sub: "../../etc" }))).toMatchObject({ code: "invalid_claims" });
  });
});

describe("verifyJwt: RS256 / ES256 through a JWKS", () => {
  it("accepts RS256 and ES256 tokens whose kid is in the key set", async () => {
    const rsa = await testKeyPair("RS256");
    const ec = await testKeyPair("ES256");
    const jwks = createLocalJWKSet(jwksOf(rsa, ec));
    for (const pair of [rsa, ec]) {
      const result = await verifyJwt(base, await pair.mint({ sub: `user-${pair.alg}` }), { jwks });
      expect(result.ok && result.user.userId).toBe(`user-${pair.alg}`);
    }
  });

  it("refuses a key that is not in the set, a wrong signature, and RS256 when no JWKS is configured", async () => {
    const known = await testKeyPair("RS256");
    const stranger = await testKeyPair("RS256");
    const jwks = createLocalJWKSet(jwksOf(known));
    expect(await refusal(base, await stranger.mint(), { jwks })).toMatchObject({ code: "unknown_key" });
    // The stranger signs but claims the known key's kid: the signature does not verify.
    expect(await refusal(base, await stranger.mint({ kid: known.kid }), { jwks })).toMatchObject({ code: "bad_signature" });
    expect(await refusal(base, await known.mint())).toMatchObject({ code: "alg_not_allowed" });
  });

  it("never verifies an HS256 token with JWKS material (no algorithm confusion)", async () => {
    const pair = await testKeyPair("RS256");
    const noSecret = { ...base, JWT_SECRET: "" } as Env;
    const hs = await mintHs256(JSON.stringify(pair.publicJwk));
    expect(await refusal(noSecret, hs, { jwks: createLocalJWKSet(jwksOf(pair)) })).toMatchObject({ code: "alg_not_allowed" });
  });
});

describe("verifyJwt: the avatar is a link other users' browsers load", () => {
  const production = { ...base, ALLOW_HTTP_URLS: "false" } as Env;
  const avatarOf = async (env: Env, claims: Record<string, unknown>) => {
    const result = await verifyJwt(env, await mintHs256(SECRET, { sub: "carol", claims }));
    if (!result.ok) throw new Error(`refused: ${result.error.code}`);
    return result.user.avatar;
  };

  it("drops a javascript:, data: or relative avatar (the user still gets in, without it)", async () => {
    expect(await avatarOf(base, { avatar: "javascript:alert(1)" })).toBeUndefined();
    expect(await avatarOf(base, { picture: "javascript:alert(1)" })).toBeUndefined();
    expect(await avatarOf(base, { avatar: "data:image/svg+xml,<svg onload=alert(1)>" })).toBeUndefined();
    expect(await avatarOf(base, { avatar: "/me.png" })).toBeUndefined();
    // A bad `avatar` does not hide a good `picture`.
    expect(await avatarOf(base, { avatar: "javascript:x", picture: "https://img.example/c.png" })).toBe("https://img.example/c.png");
  });

  it("keeps an http: avatar only where ALLOW_HTTP_URLS says so", async () => {
    expect(await avatarOf(production, { avatar: "http://img.example/c.png" })).toBeUndefined();
    expect(await avatarOf(production, { avatar: "https://img.example/c.png" })).toBe("https://img.example/c.png");
    expect(await avatarOf({ ...base, ALLOW_HTTP_URLS: "true" } as Env, { avatar: "http://img.example/c.png" })).toBe("http://img.example/c.png");
  });
});
