import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { settingNames } from "../../shared/settings/settings.ts";
import { createApp } from "./app.ts";
import type { Env } from "./env.ts";
import { checkEdgeSettings, EDGE_SETTINGS, edgeSettings } from "./settings.ts";

// One declaration of every edge setting (settings.ts): checked all at once, every problem listed, and a Worker
// with any invalid setting refuses to serve instead of failing later on first use.

const valid = { JWT_SECRET: "j".repeat(32), EDGE_INGRESS_SECRET: "e".repeat(20) };

describe("edge settings", () => {
  it("reads defaults for everything unset, and typed values for what is set", () => {
    const s = edgeSettings({ ...valid, ROOM_RATE_PER_S: "0.5", OUTBOX_BATCH_MAX: "1", JWT_ISSUER: "https://a.example, https://b.example", ALLOW_HTTP_URLS: "yes" });
    expect(s).toMatchObject({
      roomRatePerS: 0.5,
      outboxBatchMax: 1,
      jwtIssuer: ["https://a.example", "https://b.example"],
      jwtAudience: [],
      jwtClockToleranceS: 30,
      roomMaxConnections: 5000,
      inboxWelcomeLimit: 20,
      outboxMaxPending: 10_000,
      corsOrigins: ["*"],
      allowHttpUrls: true,
      edgeIngressSecret: ["e".repeat(20)],
    });
  });

  it("lists every problem at once, never echoing a secret", () => {
    const result = checkEdgeSettings({
      JWT_SECRET: "short-secret",
      JWT_CLOCK_TOLERANCE_S: "900",
      ROOM_FLUSH_MS: "abc",
      ROOM_MAX_CONNECTIONS: "-1",
      INBOX_WELCOME_LIMIT: "500",
      OUTBOX_BATCH_MAX: "5000",
      ALLOW_HTTP_URLS: "maybe",
      BRIDGE_URL: "ftp://bridge",
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const text = result.problems.join("\n");
    expect(result.problems).toHaveLength(8);
    expect(text).toContain("JWT_SECRET=<redacted, 12 characters>: must be at least 32 characters");
    expect(text).toContain('JWT_CLOCK_TOLERANCE_S="900": must be at most 300');
    expect(text).toContain('ROOM_FLUSH_MS="abc": must be a whole number');
    expect(text).toContain('ROOM_MAX_CONNECTIONS="-1": must be at least 1');
    expect(text).toContain('INBOX_WELCOME_LIMIT="500": must be at most 100');
    expect(text).toContain('OUTBOX_BATCH_MAX="5000": must be at most 100');
    expect(text).toContain('ALLOW_HTTP_URLS="maybe": must be true or false');
    expect(text).toContain('BRIDGE_URL="ftp://bridge": protocol must be one of https:, http:');
    expect(text).not.toContain("short-secret");
  });

  it("bounds the JWT clock tolerance to 0..300 s and wants a JWT_SECRET of at least 32 bytes", () => {
    expect(checkEdgeSettings({ JWT_CLOCK_TOLERANCE_S: "0" }).ok).toBe(true);
    expect(checkEdgeSettings({ JWT_CLOCK_TOLERANCE_S: "300" }).ok).toBe(true);
    expect(checkEdgeSettings({ JWT_CLOCK_TOLERANCE_S: "301" }).ok).toBe(false);
    expect(checkEdgeSettings({ JWT_CLOCK_TOLERANCE_S: "-1" }).ok).toBe(false);
    expect(checkEdgeSettings({ JWT_SECRET: "x".repeat(31) }).ok).toBe(false);
    expect(checkEdgeSettings({ JWT_SECRET: "x".repeat(32) }).ok).toBe(true);
  });

  it("catches settings that are only wrong together", () => {
    const result = checkEdgeSettings({ OUTBOX_RETRY_BASE_MS: "5000", OUTBOX_RETRY_MAX_MS: "1000" });
    expect(result).toEqual({ ok: false, problems: ["OUTBOX_RETRY_MAX_MS (1000) is below OUTBOX_RETRY_BASE_MS (5000)"] });
  });

  it("wants both VAPID keys or neither", () => {
    const result = checkEdgeSettings({ VAPID_PUBLIC_KEY: "BD-h2GOQvz_PGNJzVgY3N-pMG0BGpv9KuYFOnCSkrNlbAy0Id9atMlSx2IppFD87jr7jFEPmHkBAJzOVu8UIFMU" });
    expect(result).toEqual({ ok: false, problems: ["VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY must be set together"] });
  });

  it("wants a push request abandoned only after the run stopped waiting for it", () => {
    const result = checkEdgeSettings({ NOTIFY_PUSH_TIMEOUT_MS: "5000", NOTIFY_PUSH_ABANDON_MS: "5000" });
    expect(result).toEqual({ ok: false, problems: ["NOTIFY_PUSH_ABANDON_MS (5000) must be above NOTIFY_PUSH_TIMEOUT_MS (5000)"] });
    expect(checkEdgeSettings({ NOTIFY_PUSH_TIMEOUT_MS: "5000", NOTIFY_PUSH_ABANDON_MS: "5001" }).ok).toBe(true);
  });

  it("declares every variable env.ts types, and nothing else", () => {
    const typed: (keyof Env)[] = [
      "JWT_SECRET", "JWKS_URL", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_CLOCK_TOLERANCE_S", "CORS_ORIGINS", "ALLOW_HTTP_URLS", "DEV_SIGN_IN",
      "PUBLISH_TOKEN_SECRET", "EDGE_INGRESS_SECRET", "BRIDGE_INGRESS_SECRET", "INTERNAL_API_TOKEN",
      "BRIDGE_URL", "PLAYBACK_BASE_URL", "RTMP_BASE_URL", "FLEET_NODE_TIMEOUT_MS", "FLEET_ASSIGNMENT_TTL_MS", "EDGE_INGRESS_TOLERANCE_S",
      "PLAYBACK_SIGNING_KEYS", "PLAYBACK_TOKEN_DEFAULT_TTL_S", "PLAYBACK_TOKEN_MAX_TTL_S", "PLAYBACK_ORIGIN_URL", "MEDIA_KEY_PREFIX",
      "PLAYBACK_STATE_CACHE_MS", "PLAYBACK_MEMORY_CACHE_MB", "STREAM_KEY_CHECK_MAX", "LLHLS_RELAYS",
      "VIDEO_MAX_UPLOAD_BYTES", "VIDEO_MAX_CONCURRENT_UPLOADS", "VIDEO_UPLOAD_EXPIRY_S", "VIDEO_UPLOAD_PART_BYTES", "VIDEO_MAX_CHUNK_BYTES",
      "VIDEO_PAGE_LIMIT", "VOD_KEY_PREFIX",
      "ROOM_MAX_CONNECTIONS", "ROOM_MAX_FRAME_BYTES", "ROOM_RATE_PER_S", "ROOM_RATE_BURST", "ROOM_RATE_STRIKES", "ROOM_STATE_MAX_BYTES",
      "ROOM_WELCOME_MESSAGES", "ROOM_RESUME_MAX", "ROOM_HISTORY_MAX", "ROOM_FLUSH_MS", "ROOM_REACTION_FLUSH_MS", "ROOM_OUTBOX_FLUSH_MS",
      "ROOM_SIGNAL_RATE_PER_S", "ROOM_SIGNAL_BURST", "CALL_MAX_PEERS", "CALL_STUN_URLS", "CALL_TURN_URLS", "CALL_TURN_SECRET", "CALL_TURN_TTL_S",
      "ROOM_SHARDED", "ROOM_SHARD_AT", "ROOM_SHARDS", "ROOM_SHARD_MAX_CONNECTIONS", "ROOM_RELAY_FANOUT", "ROOM_SHARD_RING", "ROOM_SUMMARY_MS", "ROOM_UPLINK_FLUSH_MS",
      "INBOX_MAX_CONNECTIONS", "INBOX_MAX_FRAME_BYTES", "INBOX_WELCOME_LIMIT", "INBOX_MAX_STORED", "INBOX_RATE_PER_S", "INBOX_RATE_STRIKES",
      "VAPID_PUBLIC_KEY", "VAPID_PRIVATE_KEY", "VAPID_SUBJECT", "NOTIFY_PUSH_DELAY_MS", "NOTIFY_PUSH_TIMEOUT_MS", "NOTIFY_PUSH_ABANDON_MS", "NOTIFY_PUSH_MAX_ATTEMPTS",
      "NOTIFY_PUSH_RETRY_BASE_MS", "NOTIFY_PUSH_RETRY_MAX_MS", "NOTIFY_PUSH_MAX_PAYLOAD_BYTES", "NOTIFY_PUSH_MAX_SUBSCRIPTIONS",
      "NOTIFY_EMAIL_DELAY_MS", "NOTIFY_EMAIL_MIN_INTERVAL_MS", "NOTIFY_EMAIL_DIGEST_MAX", "EDGE_PUBLIC_URL", "UNSUBSCRIBE_SECRET",
      "OUTBOX_RETRY_BASE_MS", "OUTBOX_RETRY_MAX_MS", "OUTBOX_DELIVERY_TIMEOUT_MS", "OUTBOX_BATCH_MAX", "OUTBOX_MAX_PENDING",
    ];
    expect(settingNames(EDGE_SETTINGS).sort()).toEqual([...typed].sort());
  });
});

describe("a misconfigured Worker", () => {
  afterEach(() => vi.restoreAllMocks());

  it("answers every request with 500 `misconfigured`, no details, and logs the full list of problems once", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const broken = { ...env, JWT_CLOCK_TOLERANCE_S: "3600", JWT_SECRET: "too-short", ROOM_FLUSH_MS: "soon" } as Env;
    const app = createApp();
    for (const path of ["/healthz", "/inbox", "/hooks/events", "/parties/room/r1"]) {
      const res = await app.request(path, {}, broken);
      expect(res.status, path).toBe(500);
      expect(await res.json()).toEqual({ error: "misconfigured" });
    }
    const logged = errors.mock.calls.map((args) => args.join(" ")).filter((line) => line.includes("misconfigured"));
    expect(logged).toHaveLength(1);
    for (const name of ["JWT_CLOCK_TOLERANCE_S", "JWT_SECRET", "ROOM_FLUSH_MS"]) expect(logged[0]).toContain(name);
    expect(logged[0]).not.toContain("too-short");
    // The same Worker with valid settings serves.
    expect((await app.request("/healthz", {}, env)).status).toBe(200);
  });
});
