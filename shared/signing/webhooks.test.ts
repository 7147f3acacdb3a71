import { describe, expect, it } from "vitest";
import { toBase64, utf8 } from "../encoding.ts";
import { parseSecrets, signWebhook, verifyWebhook } from "./webhooks.ts";

const SECRET = "whsec_" + toBase64(utf8("a-test-secret-of-reasonable-length"));
const body = JSON.stringify({ hello: "world" });
const now = 1_800_000_000;

describe("Standard Webhooks signing", () => {
  it("verifies what it signed", async () => {
    const headers = await signWebhook(SECRET, "evt_1", body, now);
    expect(headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(await verifyWebhook(SECRET, headers, body, { nowS: now })).toEqual({ ok: true, id: "evt_1", timestampS: now });
  });

  it("matches the Standard Webhooks reference vector", async () => {
    // From the Standard Webhooks specification's test suite.
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const payload = '{"test": 2432232314}';
    const headers = await signWebhook(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", payload, 1614265330);
    expect(headers["webhook-signature"]).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  it("accepts Web Headers objects and plain header records", async () => {
    const signed = await signWebhook(SECRET, "evt_2", body, now);
    expect((await verifyWebhook(SECRET, new Headers({ ...signed }), body, { nowS: now })).ok).toBe(true);
  });

  it("refuses a changed body, id or timestamp", async () => {
    const h = await signWebhook(SECRET, "evt_3", body, now);
    expect(await verifyWebhook(SECRET, h, body + " ", { nowS: now })).toMatchObject({ ok: false, reason: "bad-signature" });
    expect(await verifyWebhook(SECRET, { ...h, "webhook-id": "evt_4" }, body, { nowS: now })).toMatchObject({ ok: false, reason: "bad-signature" });
    expect(await verifyWebhook(SECRET, { ...h, "webhook-timestamp": String(now + 1) }, body, { nowS: now })).toMatchObject({ ok: false, reason: "bad-signature" });
  });

  it("refuses the wrong secret", async () => {
    const h = await signWebhook("another-secret", "evt_5", body, now);
    expect(await verifyWebhook(SECRET, h, body, { nowS: now })).toMatchObject({ ok: false, reason: "bad-signature" });
  });

  it("refuses stale and future timestamps", async () => {
    const h = await signWebhook(SECRET, "evt_6", body, now);
    expect(await verifyWebhook(SECRET, h, body, { nowS: now + 301 })).toMatchObject({ ok: false, reason: "stale-timestamp" });
    expect(await verifyWebhook(SECRET, h, body, { nowS: now - 301 })).toMatchObject({ ok: false, reason: "future-timestamp" });
    expect((await verifyWebhook(SECRET, h, body, { nowS: now + 299 })).ok).toBe(true);
  });

  it("refuses missing headers, garbage timestamps and garbage signatures without throwing", async () => {
    expect(await verifyWebhook(SECRET, {}, body)).toMatchObject({ ok: false, reason: "missing-headers" });
    const h = await signWebhook(SECRET, "evt_7", body, now);
    expect(await verifyWebhook(SECRET, { ...h, "webhook-timestamp": "12abc" }, body, { nowS: now })).toMatchObject({ ok: false, reason: "bad-timestamp" });
    for (const sig of ["v1,", "v1,!!!", "v2," + h["webhook-signature"].slice(3), "nonsense", "v1,AAAA", "v1," + "A".repeat(5000)]) {
      expect(await verifyWebhook(SECRET, { ...h, "webhook-signature": sig }, body, { nowS: now })).toMatchObject({ ok: false, reason: "bad-signature" });
    }
    expect(await verifyWebhook([], h, body, { nowS: now })).toMatchObject({ ok: false, reason: "no-secret" });
  });

  it("rotates secrets: several signatures sent, several secrets accepted", async () => {
    const h = await signWebhook(["new-secret", "old-secret"], "evt_8", body, now);
    expect(h["webhook-signature"].split(" ")).toHaveLength(2);
    expect((await verifyWebhook(["old-secret"], h, body, { nowS: now })).ok).toBe(true);
    expect((await verifyWebhook(["new-secret"], h, body, { nowS: now })).ok).toBe(true);
    const single = await signWebhook("old-secret", "evt_9", body, now);
    expect((await verifyWebhook(parseSecrets("new-secret, old-secret"), single, body, { nowS: now })).ok).toBe(true);
  });
});
