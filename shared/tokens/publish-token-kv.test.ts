import { describe, expect, it } from "vitest";
import { mintPublishToken, verifyPublishToken } from "./publish-token.ts";

const SECRET = "kv-test-secret-0123456789abcdef";
const base = { sid: "str_a", app: "live", scope: "publish" as const, exp: Math.floor(Date.now() / 1000) + 600 };

describe("publish tokens with a key version", () => {
  it("carry kv through verification", async () => {
    const token = await mintPublishToken(SECRET, { ...base, kv: 3 });
    expect(await verifyPublishToken(SECRET, token, { streamId: "str_a", app: "live" })).toMatchObject({ ok: true, claims: { kv: 3 } });
  });

  it.each([["a negative kv", -1], ["a fractional kv", 1.5], ["a string kv", "2"]])("refuse %s as malformed", async (_what, kv) => {
    const token = await mintPublishToken(SECRET, { ...base, kv: kv as number });
    expect(await verifyPublishToken(SECRET, token, { streamId: "str_a", app: "live" })).toMatchObject({ ok: false, reason: "malformed" });
  });
});
