// Everything the Worker and its Durable Objects get from the platform: bindings, vars and secrets.
// Every var and secret is documented in README "Configuration"; defaults for vars are in wrangler.toml.
import type { EventOutbox } from "./outbox/event-outbox.ts";
import type { Inbox } from "./inbox/inbox.ts";
import type { Room } from "./rooms/room.ts";

export interface Env {
  Room: DurableObjectNamespace<Room>;
  Inbox: DurableObjectNamespace<Inbox>;
  EVENT_OUTBOX: DurableObjectNamespace<EventOutbox>;

  /** HS256 secret for client JWTs (used when JWKS_URL is empty). */
  JWT_SECRET?: string;
  /** RS256/ES256 JWKS endpoint for client JWTs; fetched and cached. */
  JWKS_URL?: string;
  JWT_ISSUER?: string;
  JWT_AUDIENCE?: string;
  /** HMAC secret for RTMP publish tokens minted here and checked by media nodes. */
  PUBLISH_TOKEN_SECRET?: string;
  /** Standard Webhooks secret(s) the NATS->HTTP bridge signs with; checked by POST /hooks/events. */
  EDGE_INGRESS_SECRET?: string;
  /** Standard Webhooks secret(s) the edge signs with when it posts to the HTTP->NATS bridge. */
  BRIDGE_INGRESS_SECRET?: string;
  /** Bearer token for the internal push API (server -> room / user). */
  INTERNAL_API_TOKEN?: string;
  BRIDGE_URL?: string;
  PLAYBACK_BASE_URL?: string;
  RTMP_BASE_URL?: string;
}

/** Hono context for the front Worker: bindings plus what middleware has established about the caller. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    /** set by the auth middleware once the caller's JWT is verified */
    user: import("./auth/claims.ts").VerifiedUser;
  };
}
