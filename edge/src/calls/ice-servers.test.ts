import { describe, expect, it, vi } from "vitest";
import { createApp } from "../app.ts";
import type { Env } from "../env.ts";
import { env, tokenFor } from "../../test/clients.ts";
import { iceServersFor, mintTurnCredential } from "./turn.ts";

// TURN credentials in the time-limited shared-secret form coturn checks: username "<expiry>:<user id>", credential
// base64(HMAC-SHA1(secret, username)). The expected credentials below were computed with openssl, not this code:
//   printf '%s' '1767225600:alice' | openssl dgst -sha1 -hmac 'test-turn-secret-0123456789' -binary | base64
const SECRET = "test-turn-secret-0123456789";

describe("TURN credentials", () => {
  it("are HMAC-SHA1 of '<expiry>:<user id>' under the shared secret, in base64", async () => {
    expect(await mintTurnCredential(SECRET, "alice", 3600, 1767222000)).toEqual({ username: "1767225600:alice", credential: "p+wgXQ8PR+sNFF4H/qi7tLPjWo8=", expiresAt: 1767225600 });
    // A user id with the separator in it: the expiry is everything before the first ':' (what coturn reads).
    expect(await mintTurnCredential(SECRET, "auth0|42:x", 60, 1767229140)).toMatchObject({ username: "1767229200:auth0|42:x", credential: "ZkTWSbnGiA9Uuw9/TTjQqKwMOgU=" });
  });

  it("a verifier holding the secret accepts the credential, and it changes with the user and the expiry", async () => {
    const { username, credential } = await mintTurnCredential(SECRET, "bob", 600);
    const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(SECRET), { name: "HMAC", hash: "SHA-1" }, false, ["verify"]);
    const mac = Uint8Array.from(atob(credential), (ch) => ch.charCodeAt(0));
    expect(mac.byteLength).toBe(20);
    expect(await crypto.subtle.verify("HMAC", key, mac, new TextEncoder().encode(username))).toBe(true);
    expect(Number(username.split(":")[0])).toBeGreaterThan(Date.now() / 1000 + 590);
    const other = await mintTurnCredential(SECRET, "carol", 600);
    expect(other.credential).not.toBe(credential);
  });

  it("lists STUN as it is and TURN with a credential; no TURN entry without a secret", async () => {
    const config = { stunUrls: ["stun:stun.example:3478"], turnUrls: ["turn:turn.example:3478?transport=udp", "turns:turn.example:5349?transport=tcp"], ttlS: 120 };
    const withTurn = await iceServersFor({ ...config, turnSecret: SECRET }, "alice", 1767225480);
    expect(withTurn).toEqual({
      iceServers: [
        { urls: ["stun:stun.example:3478"] },
        { urls: ["turn:turn.example:3478?transport=udp", "turns:turn.example:5349?transport=tcp"], username: "1767225600:alice", credential: "p+wgXQ8PR+sNFF4H/qi7tLPjWo8=" },
      ],
      ttlS: 120,
      expiresAt: 1767225600,
    });
    expect((await iceServersFor(config, "alice")).iceServers).toEqual([{ urls: ["stun:stun.example:3478"] }]);
  });
});

describe("GET /calls/ice-servers", () => {
  const app = createApp();
  const turnEnv = { ...env, CALL_STUN_URLS: "stun:127.0.0.1:3478", CALL_TURN_URLS: "turn:127.0.0.1:3478?transport=udp", CALL_TURN_SECRET: SECRET, CALL_TURN_TTL_S: "600" } as Env;
  const get = async (token: string | null, e: Env = turnEnv) => app.request("/calls/ice-servers", token ? { headers: { authorization: `Bearer ${token}` } } : {}, e);

  it("mints a credential for the caller, valid for CALL_TURN_TTL_S, never cached", async () => {
    const before = Math.floor(Date.now() / 1000);
    const res = await get(await tokenFor("alice"));
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = (await res.json()) as { iceServers: { urls: string[]; username?: string; credential?: string }[]; ttlS: number; expiresAt: number };
    expect(body.ttlS).toBe(600);
    expect(body.expiresAt).toBeGreaterThanOrEqual(before + 600);
    expect(body.iceServers[0]).toEqual({ urls: ["stun:127.0.0.1:3478"] });
    const turn = body.iceServers[1]!;
    expect(turn.urls).toEqual(["turn:127.0.0.1:3478?transport=udp"]);
    expect(turn.username).toBe(`${body.expiresAt}:alice`);
    const again = await mintTurnCredential(SECRET, "alice", 600, body.expiresAt - 600);
    expect(turn.credential).toBe(again.credential);
  });

  it("needs a token, and refuses viewers", async () => {
    const none = await get(null);
    expect(none.status).toBe(401);
    const viewer = await get(await tokenFor("vera", { claims: { role: "viewer" } }));
    expect(viewer.status).toBe(403);
    expect(((await viewer.json()) as { error: { code: string } }).error.code).toBe("call_forbidden");
  });

  it("without TURN configured hands out STUN only; the default STUN is a public one, `none` turns it off", async () => {
    const stunOnly = (await (await get(await tokenFor("alice"), env)).json()) as { iceServers: unknown[] };
    expect(stunOnly.iceServers).toEqual([{ urls: ["stun:stun.cloudflare.com:3478"] }]);
    const nothing = (await (await get(await tokenFor("alice"), { ...env, CALL_STUN_URLS: "none" } as Env)).json()) as { iceServers: unknown[] };
    expect(nothing.iceServers).toEqual([]);
  });

  it("a misconfigured ICE setting refuses to serve, like every other setting", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    for (const bad of [{ CALL_TURN_URLS: "turn:turn.example:3478" }, { CALL_STUN_URLS: "http://stun.example" }, { CALL_STUN_URLS: "stun:stun.example?transport=udp" }]) {
      const res = await get(await tokenFor("alice"), { ...env, ...bad } as Env);
      expect(res.status, JSON.stringify(bad)).toBe(500);
    }
    expect(logged.mock.calls.map((args) => args.join(" ")).join("\n")).toContain("CALL_TURN_URLS needs CALL_TURN_SECRET");
    logged.mockRestore();
  });
});
