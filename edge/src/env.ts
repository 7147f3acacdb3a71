// Everything the Worker and its Durable Objects get from the platform: bindings, vars and secrets.
// Every var and secret is documented in README "Configuration"; defaults for vars are in wrangler.toml.
import type { EventOutbox } from "./outbox/event-outbox.ts";
import type { Inbox } from "./inbox/inbox.ts";
import type { Room } from "./rooms/room.ts";
import type { UploadSession } from "./videos/upload-session.ts";
import type { VideoLibrary } from "./videos/library.ts";

export interface Env {
  Room: DurableObjectNamespace<Room>;
  Inbox: DurableObjectNamespace<Inbox>;
  EVENT_OUTBOX: DurableObjectNamespace<EventOutbox>;
  /** one object per upload (tus state, R2 multipart); see videos/upload-session.ts */
  UploadSession: DurableObjectNamespace<UploadSession>;
  /** one object per user: the user's videos; see videos/library.ts */
  VideoLibrary: DurableObjectNamespace<VideoLibrary>;
  /** uploads (`uploads/<videoId>/source`) and processed videos (`vod/<videoId>/...`); the media nodes use the same bucket over the S3 API */
  MEDIA: R2Bucket;

  /** HS256 secret for client JWTs (used when JWKS_URL is empty). */
  JWT_SECRET?: string;
  /** RS256/ES256 JWKS endpoint for client JWTs; fetched and cached. */
  JWKS_URL?: string;
  /** Required `iss` (comma-separated list allowed); empty = not checked. Default "". */
  JWT_ISSUER?: string;
  /** Required `aud` (comma-separated list allowed); empty = not checked. Default "". */
  JWT_AUDIENCE?: string;
  /** Clock skew allowed on `exp`/`nbf`, seconds. Default 30. */
  JWT_CLOCK_TOLERANCE_S?: string;
  /** HMAC secret for RTMP publish tokens minted here and checked by media nodes. */
  PUBLISH_TOKEN_SECRET?: string;
  /** Standard Webhooks secret(s) the NATS->HTTP bridge signs with; checked by POST /hooks/events. */
  EDGE_INGRESS_SECRET?: string;
  /** Standard Webhooks secret(s) the edge signs with when it posts to the HTTP->NATS bridge. */
  BRIDGE_INGRESS_SECRET?: string;
  /** Bearer token for the internal push API (server -> room / user). */
  INTERNAL_API_TOKEN?: string;
  BRIDGE_URL?: string;
  /** Origins allowed to read browser-facing HTTP routes (history, inbox): `*` or a comma-separated list. */
  CORS_ORIGINS?: string;
  PLAYBACK_BASE_URL?: string;
  RTMP_BASE_URL?: string;

  // Room limits and timings: ROOM_MAX_CONNECTIONS, ROOM_MAX_FRAME_BYTES, ROOM_RATE_PER_S, ROOM_RATE_BURST,
  // ROOM_RATE_STRIKES, ROOM_STATE_MAX_BYTES, ROOM_WELCOME_MESSAGES, ROOM_RESUME_MAX, ROOM_HISTORY_MAX,
  // ROOM_FLUSH_MS, ROOM_REACTION_FLUSH_MS, ROOM_OUTBOX_FLUSH_MS — documented with defaults in rooms/config.ts.
  ROOM_MAX_CONNECTIONS?: string;
  ROOM_MAX_FRAME_BYTES?: string;
  ROOM_RATE_PER_S?: string;
  ROOM_RATE_BURST?: string;
  ROOM_RATE_STRIKES?: string;
  ROOM_STATE_MAX_BYTES?: string;
  ROOM_WELCOME_MESSAGES?: string;
  ROOM_RESUME_MAX?: string;
  ROOM_HISTORY_MAX?: string;
  ROOM_FLUSH_MS?: string;
  ROOM_REACTION_FLUSH_MS?: string;
  ROOM_OUTBOX_FLUSH_MS?: string;
}

/** Hono context for the front Worker: bindings plus what middleware has established about the caller. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    /** set by the auth middleware once the caller's JWT is verified */
    user: import("./auth/claims.ts").VerifiedUser;
  };
}
