// Every setting of the edge (the front Worker and its Durable Objects), declared once: the variable, its type,
// default, bounds and one line of meaning. The README's edge configuration table is generated from EDGE_SETTINGS
// (section `<!-- settings:edge -->`), and wrangler.toml and env.ts list the same variables.
//
// A Worker cannot refuse to start, so the front Worker checks every setting on each request (memoized per env)
// and, when any is invalid, answers 500 `misconfigured` and logs the full list of problems once (app.ts).
// No Workers-only imports here: Node reads this module too (README generation and its test).
import { MAX_BATCH_EVENTS } from "../../shared/batch.ts";
import { bool, checkSettings, int, list, type RawEnv, secret, secrets, type Setting, type SettingsOf, SettingsError, text, url } from "../../shared/settings/settings.ts";
import { DEFAULT_TOLERANCE_S } from "../../shared/signing/webhooks.ts";

/** Client JWTs signed with HS256 need a key at least this long (bytes); shorter keys are guessable offline. */
export const JWT_SECRET_MIN_BYTES = 32;
/** Clock skew allowed on `exp`/`nbf`; more than five minutes would keep expired tokens usable. */
export const JWT_CLOCK_TOLERANCE_MAX_S = 300;

const HTTP = ["https:", "http:"];
const MiB = 1024 * 1024;

export const EDGE_SETTINGS = {
  // ---- client auth -----------------------------------------------------------------------------------
  jwtSecret: secret("JWT_SECRET", "HS256 key for client JWTs, at least 32 bytes (unset: HS256 tokens refused)", { minLength: JWT_SECRET_MIN_BYTES, optional: true }),
  jwksUrl: url("JWKS_URL", undefined, "RS256/ES256 key set URL for client JWTs (unset: RS256/ES256 refused)", { protocols: HTTP, optional: true }),
  jwtIssuer: list("JWT_ISSUER", [], "required `iss`, comma-separated list allowed (unset: not checked)", undefined, { defaultText: "unset" }),
  jwtAudience: list("JWT_AUDIENCE", [], "required `aud`, comma-separated list allowed (unset: not checked)", undefined, { defaultText: "unset" }),
  jwtClockToleranceS: int("JWT_CLOCK_TOLERANCE_S", 30, "clock skew allowed on `exp` / `nbf`, seconds (0 to 300)", { min: 0, max: JWT_CLOCK_TOLERANCE_MAX_S }),
  corsOrigins: list("CORS_ORIGINS", ["*"], "origins allowed to read history and inbox routes from a browser: `*` or a comma-separated list"),
  allowHttpUrls: bool("ALLOW_HTTP_URLS", false, "accept `http:` (not only `https:`) links in events and JWT avatars; for local runs only"),
  devSignIn: bool("DEV_SIGN_IN", false, "`POST /dev/sign-in` mints an HS256 token for any name the pages ask for; for local runs only, never in production"),

  // ---- secrets shared with other processes -----------------------------------------------------------
  publishTokenSecret: secret("PUBLISH_TOKEN_SECRET", "HMAC key of RTMP publish tokens (the Streams API's stream keys), shared with the media node (unset: no stream keys, 503)", { optional: true }),
  edgeIngressSecret: secrets("EDGE_INGRESS_SECRET", "Standard Webhooks secret(s) `POST /hooks/events` checks (comma-separated during a rotation; unset: 503)", { optional: true }),
  bridgeIngressSecret: secrets("BRIDGE_INGRESS_SECRET", "Standard Webhooks secret(s) the outboxes sign with towards the HTTP→NATS bridge (several during a rotation: one signature each)", { optional: true }),
  internalApiToken: secret("INTERNAL_API_TOKEN", "Bearer token of `/internal/*` (unset: internal API closed, 503)", { optional: true }),

  // ---- links to the media side -----------------------------------------------------------------------
  bridgeUrl: url("BRIDGE_URL", undefined, "where the outboxes deliver events (the HTTP→NATS bridge; unset: events wait)", { protocols: HTTP, optional: true }),
  playbackBaseUrl: url("PLAYBACK_BASE_URL", "http://127.0.0.1:8787", "public base URL of this Worker's /play routes (or of a CDN in front of them); playback links are <base>/play/<id or token>/live.m3u8", { protocols: HTTP }),
  rtmpBaseUrl: url("RTMP_BASE_URL", "rtmp://127.0.0.1:1935/live", "RTMP ingest URL (with the app) handed to broadcasters as rtmp.url / obs.server when no media node is heartbeating (with a fleet: each node's own MEDIA_PUBLIC_RTMP_URL)", { protocols: ["rtmp:", "rtmps:"] }),
  fleetNodeTimeoutMs: int("FLEET_NODE_TIMEOUT_MS", 6000, "a media node whose last heartbeat is older than this is out of the fleet: no broadcaster is sent to it, ms (give it a few of the nodes' MEDIA_HEARTBEAT_INTERVAL_MS)", { min: 500, max: 600_000 }),
  fleetAssignmentTtlMs: int("FLEET_ASSIGNMENT_TTL_MS", 30_000, "a node handed to a broadcaster counts that stream against its room for this long, or until its heartbeat shows the stream live, ms (spreads broadcasters who ask at once)", { min: 0, max: 3_600_000 }),
  ingressToleranceS: int("EDGE_INGRESS_TOLERANCE_S", DEFAULT_TOLERANCE_S, "allowed `webhook-timestamp` skew on `/hooks/events`, seconds", { min: 1, max: 3600 }),

  // ---- streams API and playback through /play ------------------------------------------------------------
  playbackSigningKeys: signingKeys("PLAYBACK_SIGNING_KEYS", "HS256 keys for viewer tokens of signed streams: kid:secret pairs, the first signs, all verify (rotation)"),
  playbackTokenDefaultTtlS: int("PLAYBACK_TOKEN_DEFAULT_TTL_S", 3600, "lifetime of a viewer token when the request names none, seconds (at most PLAYBACK_TOKEN_MAX_TTL_S)", { min: 60, max: 86_400 }),
  playbackTokenMaxTtlS: int("PLAYBACK_TOKEN_MAX_TTL_S", 86_400, "longest viewer token lifetime that may be asked for, seconds", { min: 60, max: 86_400 }),
  playbackOriginUrl: url("PLAYBACK_ORIGIN_URL", undefined, "pull media from this origin (media node /media, any S3-compatible endpoint) instead of the MEDIA R2 binding", { protocols: HTTP, optional: true }),
  mediaKeyPrefix: text("MEDIA_KEY_PREFIX", "live", "object key prefix the media nodes store live streams under (their MEDIA_KEY_PREFIX)", { pattern: /^[A-Za-z0-9_-]{1,64}$/ }),
  playbackStateCacheMs: int("PLAYBACK_STATE_CACHE_MS", 2000, "how long an isolate trusts what it learned of a stream's policy and status before asking its object again, ms", { min: 0, max: 60_000 }),
  playbackMemoryCacheMb: int("PLAYBACK_MEMORY_CACHE_MB", 32, "hot playback objects each isolate keeps in memory in front of the Cache API, MiB (0: none)", { min: 0, max: 96 }),
  llhlsRelays: int("LLHLS_RELAYS", 0, "relay objects per low-latency stream between viewers and the stream's object, which each collapse identical playlist requests into one (0: viewers reach the stream's object directly, fine for a few hundred)", { min: 0, max: 1024 }),
  streamKeyCheckMax: int("STREAM_KEY_CHECK_MAX", 256, "stream keys one media node may check per /internal/streams/key-check call", { min: 1, max: 1000 }),

  // ---- uploads (tus) and the videos API ------------------------------------------------------------------
  videoMaxUploadBytes: int("VIDEO_MAX_UPLOAD_BYTES", 4 * 1024 * MiB, "largest upload, bytes; a larger Upload-Length is refused with 413 (advertised as Tus-Max-Size)", { min: 1 }),
  videoMaxConcurrentUploads: int("VIDEO_MAX_CONCURRENT_UPLOADS", 3, "uploads one user may have in progress at once; one more is refused with 429", { min: 1, max: 1000 }),
  videoUploadExpiryS: int("VIDEO_UPLOAD_EXPIRY_S", 24 * 3600, "an unfinished upload expires this many seconds after it was created: its stored parts are removed and it answers 410", { min: 60, max: 7 * 86400 }),
  videoPartBytes: int("VIDEO_UPLOAD_PART_BYTES", 10 * MiB, "R2 multipart part size, bytes (R2 needs equal parts of at least 5 MiB); clients may send any chunk size up to VIDEO_MAX_CHUNK_BYTES", { min: 5 * MiB, max: 100 * MiB }),
  videoMaxChunkBytes: int("VIDEO_MAX_CHUNK_BYTES", 50 * MiB, "largest PATCH body accepted; clients should use chunks of this size (Workers refuse request bodies over 100 MiB)", { min: 1, max: 100 * MiB }),
  videoPageLimit: int("VIDEO_PAGE_LIMIT", 20, "videos per page of GET /videos when the client asks for no limit (at most 100)", { min: 1, max: 100 }),
  vodKeyPrefix: text("VOD_KEY_PREFIX", "vod", "object key prefix the media nodes store processed uploads under (their VOD_KEY_PREFIX); /play serves a video's files from <prefix>/<videoId>/", { pattern: /^[A-Za-z0-9_-]{1,64}$/ }),

  // ---- rooms -------------------------------------------------------------------------------------------
  roomMaxConnections: int("ROOM_MAX_CONNECTIONS", 5000, "open WebSockets per room; more are refused with 503 `room_full`", { min: 1 }),
  roomMaxFrameBytes: int("ROOM_MAX_FRAME_BYTES", 32 * 1024, "largest client frame; larger ones close the socket with 1009", { min: 64, max: 1024 * 1024 }),
  roomRatePerS: num0("ROOM_RATE_PER_S", 20, "client frames per second each connection may send, sustained (token bucket refill)"),
  roomRateBurst: int("ROOM_RATE_BURST", 40, "token bucket size: the burst a connection may send at once", { min: 1 }),
  roomRateStrikes: int("ROOM_RATE_STRIKES", 20, "net refused frames before the socket is closed with 1008", { min: 1 }),
  roomStateMaxBytes: int("ROOM_STATE_MAX_BYTES", 1024, "largest per-user presence state (JSON bytes)", { min: 2 }),
  roomWelcomeMessages: int("ROOM_WELCOME_MESSAGES", 50, "chat messages in the `welcome` of a fresh join", { min: 0, max: 1000 }),
  roomResumeMax: int("ROOM_RESUME_MAX", 500, "most messages replayed on `?since=`; past it the client is told to refetch", { min: 1 }),
  roomHistoryMax: int("ROOM_HISTORY_MAX", 10_000, "chat messages kept per room; older ones are pruned", { min: 1 }),
  roomFlushMs: int("ROOM_FLUSH_MS", 10, "how long room-wide frames are coalesced before one `batch` frame goes out, ms (a big room's coordinator: the least time between its frames; chat in a quiet moment leaves at once)", { min: 1, max: 1000 }),
  roomReactionFlushMs: int("ROOM_REACTION_FLUSH_MS", 250, "how often aggregated reaction counts are sent, ms", { min: 1, max: 10_000 }),
  roomOutboxFlushMs: int("ROOM_OUTBOX_FLUSH_MS", 200, "how long a room's new chat/presence events wait so they leave in one batch, ms", { min: 0, max: 10_000 }),
  // Signaling has its own bucket so a burst of ICE candidates never competes with chat (and chat never starves a
  // call). A 6-peer mesh join sends ~5 offers and a few dozen candidates at once, well inside the burst.
  roomSignalRatePerS: num0("ROOM_SIGNAL_RATE_PER_S", 50, "`signal` and `call.*` frames per second each connection may send, sustained (a bucket of its own, apart from ROOM_RATE_PER_S)"),
  roomSignalBurst: int("ROOM_SIGNAL_BURST", 200, "signaling bucket size: the `signal` / `call.*` frames a connection may send at once", { min: 1 }),

  // ---- calls (WebRTC mesh on the room's signaling) ----------------------------------------------------------
  callMaxPeers: int("CALL_MAX_PEERS", 6, "peers (connections) one room's call takes; one more gets `call_full` (a mesh sends every stream to every peer)", { min: 2, max: 16 }),
  callStunUrls: iceUrls("CALL_STUN_URLS", ["stun:stun.cloudflare.com:3478"], "STUN servers handed to call clients by GET /calls/ice-servers: comma-separated `stun:`/`stuns:` URLs, or `none`", ["stun:", "stuns:"]),
  callTurnUrls: iceUrls("CALL_TURN_URLS", [], "TURN servers handed out with per-user credentials: comma-separated `turn:`/`turns:` URLs (`?transport=udp|tcp` allowed; unset: no TURN)", ["turn:", "turns:"], { defaultText: "unset" }),
  callTurnSecret: secret("CALL_TURN_SECRET", "shared secret of the TURN servers' time-limited credentials (coturn `static-auth-secret`); needed with CALL_TURN_URLS", { minLength: 16, optional: true }),
  callTurnTtlS: int("CALL_TURN_TTL_S", 3600, "lifetime of a minted TURN credential, seconds (the client library fetches new ones before they expire)", { min: 60, max: 86_400 }),

  // ---- big rooms (one room over many objects; see edge/src/bigrooms) --------------------------------------
  roomShardAt: int("ROOM_SHARD_AT", 2000, "a room not named in ROOM_SHARDED becomes a big room once it holds this many open connections: its history moves to a coordinator and its clients are told to reconnect, landing on shards (0: never; past ROOM_MAX_CONNECTIONS: never)", { min: 0 }),
  roomSharded: list("ROOM_SHARDED", [], "room ids served as big rooms (shards + coordinator): exact ids or prefixes ending in `*`, comma-separated (unset: none)", undefined, { defaultText: "unset" }),
  roomShards: int("ROOM_SHARDS", 8, "shard objects per big room; clients are placed by a hash of their user id", { min: 1, max: 4096 }),
  roomShardMaxConnections: int("ROOM_SHARD_MAX_CONNECTIONS", 1000, "open sockets per shard; a full shard sends the client on to the next one", { min: 1, max: 32_000 }),
  roomRelayFanout: int("ROOM_RELAY_FANOUT", 32, "most shards one coordinator links to directly; with more shards, relays (one per this many shards) sit between", { min: 2, max: 1000 }),
  roomShardRing: int("ROOM_SHARD_RING", 256, "recent chat messages each shard keeps for welcomes and resumes; older gaps are asked of the coordinator", { min: 1, max: 10_000 }),
  roomSummaryMs: int("ROOM_SUMMARY_MS", 1000, "how often a big room sends its presence summary (counts, featured users), ms", { min: 100, max: 60_000 }),
  roomUplinkFlushMs: int("ROOM_UPLINK_FLUSH_MS", 5, "least time between a big-room shard's chat frames to the coordinator, ms (a message in a quiet moment leaves at once; later ones wait out the rest and leave together)", { min: 1, max: 1000 }),

  // ---- inboxes -----------------------------------------------------------------------------------------
  inboxMaxConnections: int("INBOX_MAX_CONNECTIONS", 16, "open sockets per user; one more gets `too_many_connections` and close 1008", { min: 1 }),
  inboxMaxFrameBytes: int("INBOX_MAX_FRAME_BYTES", 4096, "largest client frame (`frame_too_large`)", { min: 64, max: 1024 * 1024 }),
  inboxWelcomeLimit: int("INBOX_WELCOME_LIMIT", 20, "unread notifications in `welcome`, newest first (at most 100)", { min: 1, max: 100 }),
  inboxMaxStored: int("INBOX_MAX_STORED", 1000, "notifications kept per user (oldest read ones go first)", { min: 1 }),
  inboxRatePerS: int("INBOX_RATE_PER_S", 10, "client frames per second per connection (bursts up to twice that)", { min: 1 }),
  inboxRateStrikes: int("INBOX_RATE_STRIKES", 20, "refused frames before close 1008", { min: 1 }),

  // ---- offline notifications: Web Push and email (inside each inbox) ---------------------------------
  vapidPublicKey: text("VAPID_PUBLIC_KEY", undefined, "VAPID public key (RFC 8292): base64url of the uncompressed P-256 point, 65 bytes (unset: push off, `/push/*` answers 503)", { optional: true, pattern: /^[A-Za-z0-9_-]{86,88}$/ }),
  vapidPrivateKey: secret("VAPID_PRIVATE_KEY", "VAPID private key: base64url of the 32-byte P-256 scalar (the JWK `d`); with VAPID_PUBLIC_KEY", { minLength: 43, optional: true }),
  vapidSubject: text("VAPID_SUBJECT", "mailto:ops@pulsecast.invalid", "VAPID `sub`: a mailto: or https: contact the push services can reach", { pattern: /^(mailto:|https:\/\/)\S+$/ }),
  pushDelayMs: int("NOTIFY_PUSH_DELAY_MS", 30_000, "a notification a connected user has not read after this long is pushed, ms (offline users: at once)", { min: 0, max: 86_400_000 }),
  pushTimeoutMs: int("NOTIFY_PUSH_TIMEOUT_MS", 10_000, "how long a push run waits for a push service's answer, ms; a request still unanswered keeps running, is not sent again meanwhile, and its late answer counts", { min: 100, max: 60_000 }),
  pushAbandonMs: int("NOTIFY_PUSH_ABANDON_MS", 60_000, "a push request unanswered this long is cancelled and retried (same id and Topic: the device shows it once), ms; above NOTIFY_PUSH_TIMEOUT_MS", { min: 200, max: 600_000 }),
  pushMaxAttempts: int("NOTIFY_PUSH_MAX_ATTEMPTS", 5, "attempts per notification while push services answer 429/5xx or time out; then `failed`", { min: 1, max: 20 }),
  pushRetryBaseMs: int("NOTIFY_PUSH_RETRY_BASE_MS", 1000, "first push retry delay, ms; doubles per attempt (±20% jitter), or the service's Retry-After when larger", { min: 1 }),
  pushRetryMaxMs: int("NOTIFY_PUSH_RETRY_MAX_MS", 300_000, "longest push retry delay, ms", { min: 1 }),
  pushMaxPayloadBytes: int("NOTIFY_PUSH_MAX_PAYLOAD_BYTES", 3072, "largest push payload (JSON of id, kind, title, body, url), bytes; bigger notifications are refused at the API (at most 3993, the one-record aes128gcm limit)", { min: 256, max: 3993 }),
  pushMaxSubscriptions: int("NOTIFY_PUSH_MAX_SUBSCRIPTIONS", 20, "push subscriptions (devices) kept per user", { min: 1, max: 100 }),
  emailDelayMs: int("NOTIFY_EMAIL_DELAY_MS", 900_000, "a notification of a kind the user wants by email is mailed when still unread after this long, ms", { min: 0, max: 7 * 86_400_000 }),
  emailMinIntervalMs: int("NOTIFY_EMAIL_MIN_INTERVAL_MS", 3_600_000, "at most one email per user per this many ms; what becomes due meanwhile goes out as one digest", { min: 0, max: 7 * 86_400_000 }),
  emailDigestMax: int("NOTIFY_EMAIL_DIGEST_MAX", 20, "most notifications in one email; more wait for the next one", { min: 1, max: 50 }),
  publicUrl: url("EDGE_PUBLIC_URL", undefined, "the edge's public base URL, for unsubscribe links in emails (unset: no email is sent)", { protocols: HTTP, optional: true }),
  unsubscribeSecret: secret("UNSUBSCRIBE_SECRET", "HMAC key of the unsubscribe links in emails (unset: no email is sent)", { minLength: 32, optional: true }),

  // ---- outboxes (inside each room and inbox) ---------------------------------------------------------
  outboxRetryBaseMs: int("OUTBOX_RETRY_BASE_MS", 500, "delay before the first retry of a failed delivery, ms; doubles per failure (±20% jitter)", { min: 1 }),
  outboxRetryMaxMs: int("OUTBOX_RETRY_MAX_MS", 60_000, "longest delay between retries, ms (at least OUTBOX_RETRY_BASE_MS)", { min: 1 }),
  outboxDeliveryTimeoutMs: int("OUTBOX_DELIVERY_TIMEOUT_MS", 10_000, "how long one POST to the bridge may take before it counts as failed, ms", { min: 100, max: 300_000 }),
  outboxBatchMax: int("OUTBOX_BATCH_MAX", MAX_BATCH_EVENTS, `events per POST to the bridge (1 to ${MAX_BATCH_EVENTS}; 1 = single-event form)`, { min: 1, max: MAX_BATCH_EVENTS }),
  outboxMaxPending: int("OUTBOX_MAX_PENDING", 10_000, "events one room or inbox keeps waiting for the bridge; past it the oldest are dropped (counted in its status)", { min: 10 }),
};

/** One playback signing key: `kid` goes in the token header so keys can rotate without cutting viewers. */
export interface SigningKey {
  kid: string;
  secret: string;
}

const KID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

/**
 * `kid:secret` pairs, comma or space separated; the first signs new tokens, all of them verify. A credential:
 * its value never appears in an error. (Built by hand because `secrets` has no notion of a key id.)
 */
export function signingKeys(env: string, doc: string): Setting<SigningKey[] | undefined> {
  return {
    env,
    doc,
    default: undefined,
    optional: true,
    secret: true,
    parse(raw) {
      const keys: SigningKey[] = [];
      for (const item of raw.split(/[\s,]+/).filter(Boolean)) {
        const at = item.indexOf(":");
        const kid = at > 0 ? item.slice(0, at) : "";
        const secret = at > 0 ? item.slice(at + 1) : "";
        if (!KID_PATTERN.test(kid)) throw new Error(`item ${keys.length + 1} is not <kid>:<secret> with a kid of [A-Za-z0-9_-]{1,32}`);
        if (secret.length < 32) throw new Error(`the secret of kid '${kid}' must be at least 32 characters`);
        if (keys.some((k) => k.kid === kid)) throw new Error(`kid '${kid}' appears twice`);
        keys.push({ kid, secret });
      }
      if (keys.length === 0) throw new Error("no key given");
      return keys;
    },
  };
}

/** A STUN/TURN URI (RFC 7064 / 7065): scheme, host, optional port, and for TURN an optional transport. */
const ICE_URL = /^(stuns?|turns?):(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?(\?transport=(udp|tcp))?$/;

/** A comma-separated list of STUN or TURN URIs with one of `schemes`; `none` is the empty list. */
function iceUrls(env: string, def: string[], doc: string, schemes: string[], common: { defaultText?: string } = {}): Setting<string[]> {
  return {
    env,
    doc,
    default: def,
    defaultText: common.defaultText,
    optional: false,
    secret: false,
    parse(raw) {
      if (raw.toLowerCase() === "none") return [];
      const items = raw.split(",").map((s) => s.trim()).filter(Boolean);
      if (items.length === 0) throw new Error("no URL given (`none` for no server)");
      for (const item of items) {
        const m = ICE_URL.exec(item);
        if (!m || !schemes.includes(`${m[1]}:`)) throw new Error(`${JSON.stringify(item)} is not a ${schemes.join(" / ")} URI like ${schemes[0]}host.example:3478`);
        if (m[5] && !m[1]!.startsWith("turn")) throw new Error(`${JSON.stringify(item)}: only TURN URIs take ?transport=`);
      }
      return items;
    },
  };
}

/** A positive number of frames per second (decimals allowed: 0.5 = one frame every two seconds). */
function num0(env: string, def: number, doc: string) {
  const setting = int(env, def, doc, { min: 1 });
  return {
    ...setting,
    parse(raw: string): number {
      const n = Number(raw);
      if (!/^\d+(\.\d+)?$/.test(raw) || !Number.isFinite(n) || n <= 0) throw new Error("must be a positive number");
      return n;
    },
  };
}

export type EdgeSettings = SettingsOf<typeof EDGE_SETTINGS>;

/** Problems only visible across settings (each one alone is fine). */
function crossChecks(s: EdgeSettings): string[] {
  const problems: string[] = [];
  if (s.outboxRetryMaxMs < s.outboxRetryBaseMs) problems.push(`OUTBOX_RETRY_MAX_MS (${s.outboxRetryMaxMs}) is below OUTBOX_RETRY_BASE_MS (${s.outboxRetryBaseMs})`);
  if (s.pushRetryMaxMs < s.pushRetryBaseMs) problems.push(`NOTIFY_PUSH_RETRY_MAX_MS (${s.pushRetryMaxMs}) is below NOTIFY_PUSH_RETRY_BASE_MS (${s.pushRetryBaseMs})`);
  if (s.pushAbandonMs <= s.pushTimeoutMs) problems.push(`NOTIFY_PUSH_ABANDON_MS (${s.pushAbandonMs}) must be above NOTIFY_PUSH_TIMEOUT_MS (${s.pushTimeoutMs})`);
  if (Boolean(s.vapidPublicKey) !== Boolean(s.vapidPrivateKey)) problems.push("VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY must be set together");
  // Otherwise every viewer token asked for without an expiry would be refused as too long.
  if (s.callTurnUrls.length > 0 && !s.callTurnSecret) problems.push("CALL_TURN_URLS needs CALL_TURN_SECRET (TURN credentials are minted from it)");
  if (s.playbackTokenDefaultTtlS > s.playbackTokenMaxTtlS) problems.push(`PLAYBACK_TOKEN_DEFAULT_TTL_S (${s.playbackTokenDefaultTtlS}) is above PLAYBACK_TOKEN_MAX_TTL_S (${s.playbackTokenMaxTtlS})`);
  return problems;
}

export type EdgeSettingsResult = { ok: true; settings: EdgeSettings } | { ok: false; problems: string[] };

const checked = new WeakMap<object, EdgeSettingsResult>();

/** Every edge setting checked against `env` (memoized per env object): the values, or every problem. */
export function checkEdgeSettings(env: object): EdgeSettingsResult {
  let result = checked.get(env);
  if (!result) {
    const out = checkSettings(EDGE_SETTINGS, env as RawEnv);
    const problems = out.values === undefined ? out.problems : crossChecks(out.values);
    result = out.values !== undefined && problems.length === 0 ? { ok: true, settings: out.values } : { ok: false, problems };
    checked.set(env, result);
  }
  return result;
}

/** The edge's settings; throws a SettingsError listing every problem (the front Worker refuses to serve first). */
export function edgeSettings(env: object): EdgeSettings {
  const result = checkEdgeSettings(env);
  if (!result.ok) throw new SettingsError(result.problems, "edge configuration");
  return result.settings;
}

/** Name of the README section generated from EDGE_SETTINGS. */
export const EDGE_README_SECTION = "edge";
