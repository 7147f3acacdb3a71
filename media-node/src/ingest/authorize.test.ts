import { describe, expect, it } from "vitest";
import { mintPublishToken } from "../../../shared/tokens/publish-token.ts";
import { createAuthorizer } from "./authorize.ts";

const secret = "unit-test-publish-secret-0123456789";
const auth = createAuthorizer({ apps: ["live"], secret });
const exp = () => Math.floor(Date.now() / 1000) + 600;

describe("publish authorizer", () => {
  it("accepts a token for this stream, app and scope", async () => {
    const token = await mintPublishToken(secret, { sid: "abc", app: "live", scope: "publish", exp: exp(), sub: "u1" });
    const req = { app: "live", name: "abc", token };
    expect(auth.check(req)).toEqual({ ok: true });
    expect(await auth.verify(req)).toMatchObject({ ok: true, claims: { sid: "abc", sub: "u1" } });
  });

  it.each([
    ["unknown app", { app: "admin", name: "abc" }, "unknown-app"],
    ["dot-dot", { app: "live", name: "..abc" }, "bad-stream-key"],
    ["slash", { app: "live", name: "a/b" }, "bad-stream-key"],
    ["control character", { app: "live", name: "a\u0001b" }, "bad-stream-key"],
    ["over-long", { app: "live", name: "a".repeat(65) }, "bad-stream-key"],
    ["empty", { app: "live", name: "" }, "bad-stream-key"],
    ["rejected by node-media-server", { app: "live", name: "abc", rejectedByServer: true }, "bad-stream-key"],
  ])("refuses %s by name before touching the token", (_, req, reason) => {
    expect(auth.check({ token: undefined, ...req })).toMatchObject({ ok: false, reason });
  });

  it("refuses missing, forged, expired, wrong-scope, wrong-stream and wrong-app tokens with their reason", async () => {
    const good = { sid: "abc", app: "live", scope: "publish" as const, exp: exp() };
    const cases: [string | undefined, string][] = [
      [undefined, "token-missing"],
      ["garbage", "token-malformed"],
      [await mintPublishToken("another-secret-0123456789abcdef", good), "token-bad-signature"],
      [await mintPublishToken(secret, { ...good, exp: Math.floor(Date.now() / 1000) - 3600 }), "token-expired"],
      [await mintPublishToken(secret, { ...good, scope: "play" as never }), "token-wrong-scope"],
      [await mintPublishToken(secret, { ...good, sid: "other" }), "token-wrong-stream"],
      [await mintPublishToken(secret, { ...good, app: "vod" }), "token-wrong-app"],
    ];
    for (const [token, reason] of cases) {
      const verdict = await auth.verify({ app: "live", name: "abc", token });
      expect(verdict, reason).toMatchObject({ ok: false, reason });
      if (!verdict.ok) expect(verdict.detail.length).toBeGreaterThan(0);
    }
  });
});
