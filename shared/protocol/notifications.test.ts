import { describe, expect, it } from "vitest";
import { channelsFor, DEFAULT_PREFERENCES, notificationPreferences, pushSubscriptionJson, quietUntil } from "./notifications.ts";

const at = (iso: string) => Date.parse(iso);

describe("quiet hours", () => {
  it("are none by default", () => {
    expect(quietUntil(DEFAULT_PREFERENCES, at("2026-11-30T03:00:00Z"))).toBeNull();
  });

  it("within one day: quiet inside [start, end), the end is the answer", () => {
    const prefs = { timeZone: "UTC", quietHours: { start: "13:00", end: "15:30" } };
    expect(quietUntil(prefs, at("2026-11-30T12:59:59Z"))).toBeNull();
    expect(quietUntil(prefs, at("2026-11-30T13:00:00Z"))).toBe(at("2026-11-30T15:30:00Z"));
    expect(quietUntil(prefs, at("2026-11-30T15:29:30Z"))).toBe(at("2026-11-30T15:30:00Z"));
    expect(quietUntil(prefs, at("2026-11-30T15:30:00Z"))).toBeNull();
  });

  it("across midnight, in the user's time zone", () => {
    // 22:00-07:00 in New York (UTC-5 in winter) = 03:00-12:00 UTC
    const prefs = { timeZone: "America/New_York", quietHours: { start: "22:00", end: "07:00" } };
    expect(quietUntil(prefs, at("2026-12-01T02:59:00Z"))).toBeNull(); // 21:59 local
    expect(quietUntil(prefs, at("2026-12-01T03:00:00Z"))).toBe(at("2026-12-01T12:00:00Z")); // 22:00 local
    expect(quietUntil(prefs, at("2026-12-01T08:15:00Z"))).toBe(at("2026-12-01T12:00:00Z")); // 03:15 local
    expect(quietUntil(prefs, at("2026-12-01T12:00:00Z"))).toBeNull(); // 07:00 local
    // Tokyo (UTC+9): 22:00 local = 13:00 UTC
    expect(quietUntil({ timeZone: "Asia/Tokyo", quietHours: { start: "22:00", end: "07:00" } }, at("2026-12-01T13:30:00Z"))).toBe(at("2026-12-01T22:00:00Z"));
  });
});

describe("preferences", () => {
  it("fill defaults, and refuse unknown zones, bad times, unknown fields and equal start/end", () => {
    expect(notificationPreferences.parse({})).toEqual({ timeZone: "UTC", quietHours: null, email: null, defaults: { push: true, email: false }, kinds: {} });
    const bad = (v: unknown) => notificationPreferences.safeParse(v).error?.issues[0]?.message;
    expect(bad({ timeZone: "Mars/Olympus" })).toBe("unknown IANA time zone");
    expect(bad({ quietHours: { start: "25:00", end: "07:00" } })).toMatch(/HH:MM/);
    expect(bad({ quietHours: { start: "07:00", end: "07:00" } })).toMatch(/differ/);
    expect(bad({ email: "not-an-address" })).toBeDefined();
    expect(bad({ colour: "blue" })).toBeDefined();
    expect(bad({ kinds: { "bad kind!": { push: true } } })).toBeDefined();
  });

  it("decide channels per kind: the kind's choice, else the defaults; email needs an address", () => {
    const prefs = notificationPreferences.parse({ email: "a@example.test", defaults: { push: true, email: false }, kinds: { "media.ready": { email: true }, mention: { push: false } } });
    expect(channelsFor(prefs, "media.ready")).toEqual({ push: true, email: true });
    expect(channelsFor(prefs, "mention")).toEqual({ push: false, email: false });
    expect(channelsFor(prefs, "other")).toEqual({ push: true, email: false });
    expect(channelsFor({ ...prefs, email: null }, "media.ready")).toEqual({ push: true, email: false });
  });
});

describe("PushSubscription JSON", () => {
  const p256dh = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
  const auth = "BTBZMqHH6r4Tts7J_aSIgg";
  it("takes a browser's subscription and refuses malformed keys", () => {
    expect(pushSubscriptionJson.safeParse({ endpoint: "https://push.example/abc", expirationTime: null, keys: { p256dh, auth } }).success).toBe(true);
    expect(pushSubscriptionJson.safeParse({ endpoint: "https://push.example/abc", keys: { p256dh: p256dh.slice(2), auth } }).error?.issues[0]?.message).toMatch(/uncompressed P-256/);
    expect(pushSubscriptionJson.safeParse({ endpoint: "https://push.example/abc", keys: { p256dh, auth: "AAAA" } }).error?.issues[0]?.message).toMatch(/16 bytes/);
    expect(pushSubscriptionJson.safeParse({ endpoint: "not a url", keys: { p256dh, auth } }).success).toBe(false);
  });
});
