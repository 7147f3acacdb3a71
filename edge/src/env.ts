// Everything the Worker and its Durable Objects get from the platform: bindings, vars and secrets.
// Vars and secrets are declared (type, default, bounds, meaning) in settings.ts, which is the only place that
// reads them; they are listed here so `env` is typed, and README "Configuration" is generated from settings.ts.
import type { Inbox } from "./inbox/inbox.ts";
import type { Room } from "./rooms/room.ts";
import type { RoomCoordinator } from "./bigrooms/coordinator.ts";
import type { RoomRelay } from "./bigrooms/relay.ts";
import type { RoomShard } from "./bigrooms/shard.ts";
import type { Stream } from "./streams/stream-object.ts";
import type { StreamIndex } from "./streams/stream-index.ts";
import type { Fleet } from "./fleet/fleet-object.ts";
import type { UploadSession } from "./videos/upload-session.ts";
import type { VideoLibrary } from "./videos/library.ts";
import type { LowLatencyStream } from "./llhls/stream-object.ts";
import type { LowLatencyRelay } from "./llhls/relay.ts";

export interface Env {
  Room: DurableObjectNamespace<Room>;
  Inbox: DurableObjectNamespace<Inbox>;
  /** one object per live input (Streams API) */
  Stream: DurableObjectNamespace<Stream>;
  /** one object per owner listing their streams */
  StreamIndex: DurableObjectNamespace<StreamIndex>;
  /** the media fleet as the nodes' heartbeats describe it (one object, named "fleet"); see fleet/fleet-object.ts */
  Fleet: DurableObjectNamespace<Fleet>;
  /** one object per upload (tus state, R2 multipart), named by the video id; see videos/upload-session.ts */
  UploadSession: DurableObjectNamespace<UploadSession>;
  /** one object per user: the user's videos and the outbox announcing their uploads; see videos/library.ts */
  VideoLibrary: DurableObjectNamespace<VideoLibrary>;
  /**
   * The media bucket (R2): uploads (`uploads/<videoId>/source`), processed videos (`vod/<videoId>/...`) and live
   * streams (`live/<streamId>/...`); the media nodes use it over the S3 API. /play reads it unless
   * PLAYBACK_ORIGIN_URL is set (local runs).
   */
  MEDIA: R2Bucket;
  /** big rooms: the coordinator (one per room), its relays and the shards that hold the sockets */
  RoomCoordinator: DurableObjectNamespace<RoomCoordinator>;
  RoomRelay: DurableObjectNamespace<RoomRelay>;
  RoomShard: DurableObjectNamespace<RoomShard>;
  /** one object per live stream holding its low-latency playlists; see llhls/stream-object.ts */
  LowLatencyStream: DurableObjectNamespace<LowLatencyStream>;
  /** relays between viewers and a stream's low-latency object (LLHLS_RELAYS); see llhls/relay.ts */
  LowLatencyRelay: DurableObjectNamespace<LowLatencyRelay>;
  /** the pages and their scripts (wrangler `[assets]`, built by `node web/build.ts`); absent where not configured */
  ASSETS?: Fetcher;

  // client auth
  JWT_SECRET?: string;
  JWKS_URL?: string;
  JWT_ISSUER?: string;
  JWT_AUDIENCE?: string;
  JWT_CLOCK_TOLERANCE_S?: string;
  CORS_ORIGINS?: string;
  ALLOW_HTTP_URLS?: string;
  DEV_SIGN_IN?: string;
  // secrets shared with other processes
  PUBLISH_TOKEN_SECRET?: string;
  EDGE_INGRESS_SECRET?: string;
  BRIDGE_INGRESS_SECRET?: string;
  INTERNAL_API_TOKEN?: string;
  // links to the media side
  BRIDGE_URL?: string;
  PLAYBACK_BASE_URL?: string;
  RTMP_BASE_URL?: string;
  FLEET_NODE_TIMEOUT_MS?: string;
  FLEET_ASSIGNMENT_TTL_MS?: string;
  EDGE_INGRESS_TOLERANCE_S?: string;
  // streams API and playback through /play
  PLAYBACK_SIGNING_KEYS?: string;
  PLAYBACK_TOKEN_DEFAULT_TTL_S?: string;
  PLAYBACK_TOKEN_MAX_TTL_S?: string;
  PLAYBACK_ORIGIN_URL?: string;
  MEDIA_KEY_PREFIX?: string;
  PLAYBACK_STATE_CACHE_MS?: string;
  PLAYBACK_MEMORY_CACHE_MB?: string;
  STREAM_KEY_CHECK_MAX?: string;
  LLHLS_RELAYS?: string;
  // uploads and the videos API
  VIDEO_MAX_UPLOAD_BYTES?: string;
  VIDEO_MAX_CONCURRENT_UPLOADS?: string;
  VIDEO_UPLOAD_EXPIRY_S?: string;
  VIDEO_UPLOAD_PART_BYTES?: string;
  VIDEO_MAX_CHUNK_BYTES?: string;
  VIDEO_PAGE_LIMIT?: string;
  VOD_KEY_PREFIX?: string;
  // rooms
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
  ROOM_SIGNAL_RATE_PER_S?: string;
  ROOM_SIGNAL_BURST?: string;
  // calls
  CALL_MAX_PEERS?: string;
  CALL_STUN_URLS?: string;
  CALL_TURN_URLS?: string;
  CALL_TURN_SECRET?: string;
  CALL_TURN_TTL_S?: string;
  // big rooms
  ROOM_SHARDED?: string;
  ROOM_SHARD_AT?: string;
  ROOM_SHARDS?: string;
  ROOM_SHARD_MAX_CONNECTIONS?: string;
  ROOM_RELAY_FANOUT?: string;
  ROOM_SHARD_RING?: string;
  ROOM_SUMMARY_MS?: string;
  ROOM_UPLINK_FLUSH_MS?: string;
  // inboxes
  INBOX_MAX_CONNECTIONS?: string;
  INBOX_MAX_FRAME_BYTES?: string;
  INBOX_WELCOME_LIMIT?: string;
  INBOX_MAX_STORED?: string;
  INBOX_RATE_PER_S?: string;
  INBOX_RATE_STRIKES?: string;
  // offline notifications: Web Push and email (inside each inbox)
  VAPID_PUBLIC_KEY?: string;
  VAPID_PRIVATE_KEY?: string;
  VAPID_SUBJECT?: string;
  NOTIFY_PUSH_DELAY_MS?: string;
  NOTIFY_PUSH_TIMEOUT_MS?: string;
  NOTIFY_PUSH_ABANDON_MS?: string;
  NOTIFY_PUSH_MAX_ATTEMPTS?: string;
  NOTIFY_PUSH_RETRY_BASE_MS?: string;
  NOTIFY_PUSH_RETRY_MAX_MS?: string;
  NOTIFY_PUSH_MAX_PAYLOAD_BYTES?: string;
  NOTIFY_PUSH_MAX_SUBSCRIPTIONS?: string;
  NOTIFY_EMAIL_DELAY_MS?: string;
  NOTIFY_EMAIL_MIN_INTERVAL_MS?: string;
  NOTIFY_EMAIL_DIGEST_MAX?: string;
  EDGE_PUBLIC_URL?: string;
  UNSUBSCRIBE_SECRET?: string;
  // outboxes (inside each room and inbox)
  OUTBOX_RETRY_BASE_MS?: string;
  OUTBOX_RETRY_MAX_MS?: string;
  OUTBOX_DELIVERY_TIMEOUT_MS?: string;
  OUTBOX_BATCH_MAX?: string;
  OUTBOX_MAX_PENDING?: string;
}

/** Hono context for the front Worker: bindings plus what middleware has established about the caller. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    /** set by the auth middleware once the caller's JWT is verified */
    user: import("./auth/claims.ts").VerifiedUser;
  };
}
