import { describe, expect, it } from "vitest";
import { mintPublishToken, verifyPublishToken } from "./publish-token.ts";

const SECRET = "publish-secret-for-tests";
const now = 1_800_000_000;
const expect_ = { streamId: "cam1", app: "live", nowS: now };

describe("RTMP publish tokens", () => {
  it("verifies a token it minted and returns its claims", async () => {
    const token = await mintPublishToken(SECRET, { sid: "cam1", app: "live", scope: "publish", exp: now + 60, sub: "u1", room: "show" });
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const result = await verifyPublishToken(SECRET, token, expect_);
    expect(result).toEqual({ ok: true, claims: { sid: "cam1", app: "live", scope: "publish", exp: now + 60, sub: "u1", room: "show" } });
  });

  it("refuses missing, malformed and oversized tokens", async () => {
    expect(await verifyPublishToken(SECRET, undefined, expect_)).toMatchObject({ ok: false, reason: "missing" });
    expect(await verifyPublishToken(SECRET, "", expect_)).toMatchObject({ ok: false, reason: "missing" });
    for (const bad of ["abc", "a.b.c", "!!.??", "e30.AAAA", "x".repeat(3000)]) {
      expect(await verifyPublishToken(SECRET, bad, expect_)).toMatchObject({ ok: false, reason: "malformed" });
    }
  });

  it("refuses a forged token (other secret, or edited claims)", async () => {
    const other = await mintPublishToken("another-secret", { sid: "cam1", app: "live", scope: "publish", exp: now + 60 });
    expect(await verifyPublishToken(SECRET, other, expect_)).toMatchObject({ ok: false, reason: "bad-signature" });
    const token = await mintPublishToken(SECRET, { sid: "cam1", app: "live", scope: "publish", exp: now + 60 });
    const [, sig] = token.split(".");
    const edited = Buffer.from(JSON.stringify({ sid: "cam1", app: "live", scope: "publish", exp: now + 99999 })).toString("base64url");
    expect(await verifyPublishToken(SECRET, `${edited}.${sig}`, expect_)).toMatchObject({ ok: false, reason: "bad-signature" });
  });

  it("refuses expired tokens (beyond the skew)", async () => {
    const token = await mintPublishToken(SECRET, { sid: "cam1", app: "live", scope: "publish", exp: now - 31 });
    expect(await verifyPublishToken(SECRET, token, expect_)).toMatchObject({ ok: false, reason: "expired" });
    const withinSkew = await mintPublishToken(SECRET, { sid: "cam1", app: "live", scope: "publish", exp: now - 10 });
    expect((await verifyPublishToken(SECRET, withinSkew, expect_)).ok).toBe(true);
  });

  it("refuses a wrong scope, another stream's token, or another app", async () => {
    // @ts-expect-error — deliberately wrong scope
    const play = await mintPublishToken(SECRET, { sid: "cam1", app: "live", scope: "play", exp: now + 60 });
    expect(await verifyPublishToken(SECRET, play, expect_)).toMatchObject({ ok: false, reason: "wrong-scope" });
    const other = await mintPublishToken(SECRET, { sid: "cam2", app: "live", scope: "publish", exp: now + 60 });
    expect(await verifyPublishToken(SECRET, other, expect_)).toMatchObject({ ok: false, reason: "wrong-stream" });
    const app = await mintPublishToken(SECRET, { sid: "cam1", app: "backstage", scope: "publish", exp: now + 60 });
    expect(await verifyPublishToken(SECRET, app, expect_)).toMatchObject({ ok: false, reason: "wrong-app" });
  });

  it("will not mint a token for a stream id that could escape a path", async () => {
    await expect(mintPublishToken(SECRET, { sid: "../etc", app: "live", scope: "publish", exp: now })).rejects.toThrow(/stream id/);
  });
});
