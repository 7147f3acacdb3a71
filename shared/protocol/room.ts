// The room WebSocket protocol (`/parties/room/<roomId>`): every frame either side sends, as zod schemas.
// Frames are JSON text, one object with a `type`. The server parses each client frame with `clientFrame`;
// clients may check what they get with `serverFrame`. README "WebSocket protocol" documents the same.
//
// Delivery notes for clients:
// - Room-wide frames (message, join/leave/update, comment, reactions, event, deleted, moderation) are
//   coalesced: within a short window (ROOM_FLUSH_MS, default 10 ms) they go out as one
//   `{ type: "batch", frames: [...] }` frame, in order. A window with one frame sends it bare.
// - Messages and presence frames are idempotent: apply `message` by id, presence frames as upserts
//   (a client can see a message both in `welcome` and in a following batch).
// - Two presence modes, named by `welcome.mode`: "small" (absent means small) is the full user list plus
//   `join`/`leave`/`update` diffs; "big" (a room served by many objects) sends no per-user diffs, only a
//   `summary` frame at a steady rate: counts plus short named lists (broadcasters, moderators, recent chatters).
// - Calls are opt-in per connection: a client that sends `call.join` becomes a peer of the room's call and from
//   then on gets `peer.join` / `peer.update` / `peer.leave` for every other peer (one per connection, so two tabs of
//   one user are two peers). Connections that never join get none of these, and a room without a call keeps no
//   call state at all. Signaling (`signal`, `call.*`) has its own rate budget, separate from chat.
// - Every client frame may carry an `id` (≤ 64 characters of the client's choosing); an `error` answering a frame
//   echoes it with the frame's `type` in `ref`, so a client knows exactly which frame was refused.
import { z } from "zod";
import { USER_ID_PATTERN } from "../names.ts";
import { webUrl } from "../urls.ts";

const userId = z.string().regex(USER_ID_PATTERN, "not a valid user id");
const role = z.enum(["viewer", "member", "moderator", "broadcaster"]);

/** Longest chat message (characters); equal to the `chat.message` event's limit. */
export const MAX_CHAT_CHARS = 4000;
/** Longest live comment (characters). */
export const MAX_COMMENT_CHARS = 500;

/** Close codes the room uses besides the standard ones. */
export const ROOM_CLOSE = {
  /** frame larger than ROOM_MAX_FRAME_BYTES */
  tooLarge: 1009,
  /** kept sending past the rate limit */
  policy: 1008,
  /** removed by a moderator (may reconnect) */
  kicked: 4001,
  /** banned by a moderator (reconnects are refused with 403 `banned`) */
  banned: 4003,
  /** the room grew past one object: reconnect now with `?since=` (the same URL lands on its shards) */
  moved: 4010,
} as const;

// ---------------------------------------------------------------------------------------------------------
// Client -> server

/** Chat: stored, numbered, broadcast as `message`. Not allowed for role `viewer`. */
export const sendFrame = z.object({
  type: z.literal("send"),
  text: z.string().trim().min(1, "text is empty").max(MAX_CHAT_CHARS),
  /** the client's own id for this message, echoed in the `message` frame so it can match its send */
  clientId: z.string().max(64).optional(),
});

/** Live comment: ephemeral (not stored), broadcast as `comment`. Not allowed for role `viewer`. */
export const commentFrame = z.object({
  type: z.literal("comment"),
  text: z.string().trim().min(1, "text is empty").max(MAX_COMMENT_CHARS),
});

/** Reaction: counted, and sent to the room as aggregated `reactions` a few times a second. Any role. */
export const reactFrame = z.object({
  type: z.literal("react"),
  emoji: z.string().min(1).max(16),
});

/** Sets this user's presence state (replaces it; shared by all the user's connections). Any role. */
export const presenceFrame = z.object({
  type: z.literal("presence"),
  /** small (ROOM_STATE_MAX_BYTES of JSON, default 1024): status, typing, cursor, ... */
  state: z.record(z.string().max(64), z.unknown()),
});

export const iceCandidate = z.object({
  candidate: z.string().max(2048),
  sdpMid: z.string().max(64).nullable().optional(),
  sdpMLineIndex: z.number().int().min(0).max(1024).nullable().optional(),
  usernameFragment: z.string().max(256).nullable().optional(),
});

/** A client's own id for one frame: echoed in the `error` that refuses it (and in the answer to `call.*` frames). */
export const frameId = z.string().min(1).max(64);

export const SIGNAL_KINDS = ["offer", "answer", "candidate", "bye"] as const;

/**
 * WebRTC signaling to one connection of this room (`to` = its connection id, from `call.welcome` / `peer.join`,
 * or the `from` of a signal received). Not allowed for `viewer`; never to oneself (`self_signal`). Relayed as it
 * is, in order, to that connection only; refused with an `error` naming it (`ref: "signal"`, the frame's `id`)
 * when the connection is gone (`peer_not_found`) or the signaling budget is spent (`rate_limited`). Nothing else
 * happens to a signal: it is never dropped without an error.
 */
export const signalFrame = z.object({
  type: z.literal("signal"),
  id: frameId.optional(),
  to: z.string().min(1).max(64),
  kind: z.enum(SIGNAL_KINDS),
  sdp: z.string().max(24_000).optional(),
  candidate: iceCandidate.optional(),
});

/** What a peer sends: microphone on, camera on, sharing a screen. Shown to the other peers as they change. */
export const mediaState = z.object({
  audio: z.boolean(),
  video: z.boolean(),
  screen: z.boolean(),
});
export type MediaState = z.infer<typeof mediaState>;

/**
 * Joins the room's call as a peer (this connection only; another tab of the same user is another peer). Answered
 * with `call.welcome` (the other peers); every other peer gets `peer.join`. `replaces`: the connection id this
 * client had before its socket dropped; when that connection is still a peer of the same user (the server has not
 * seen the drop yet), it is taken out of the call at once and the other peers get `peer.join` with `replaces`.
 * Refused (`error`, `ref: "call.join"`) for viewers (`forbidden`), when the call is full (`call_full`), and in a
 * big room (`call_unavailable`). Joining again on the same connection answers a fresh `call.welcome` and changes
 * only the media state.
 */
export const callJoinFrame = z.object({
  type: z.literal("call.join"),
  id: frameId.optional(),
  media: mediaState,
  replaces: z.string().min(1).max(64).optional(),
});
/** Changes this peer's media state; the other peers get `peer.update`. `not_in_call` before a `call.join`. */
export const callUpdateFrame = z.object({ type: z.literal("call.update"), id: frameId.optional(), media: mediaState });
/** Leaves the call (the socket stays in the room); answered with `call.left`, the other peers get `peer.leave`. */
export const callLeaveFrame = z.object({ type: z.literal("call.leave"), id: frameId.optional() });

/** Moderator: delete a chat message (everyone gets `deleted`). */
export const deleteFrame = z.object({ type: z.literal("delete"), messageId: z.number().int().positive() });
/** Moderator: close every connection of a user (they may come back). */
export const kickFrame = z.object({ type: z.literal("kick"), userId, reason: z.string().max(200).optional() });
/** Moderator: kick and refuse the user's future connections to this room (persisted). */
export const banFrame = z.object({ type: z.literal("ban"), userId, reason: z.string().max(200).optional() });
/** Moderator: lift a ban. */
export const unbanFrame = z.object({ type: z.literal("unban"), userId });

/** Liveness check; answered with `pong`. */
export const pingFrame = z.object({ type: z.literal("ping"), id: z.string().max(64).optional() });

export const clientFrame = z.discriminatedUnion("type", [
  sendFrame,
  commentFrame,
  reactFrame,
  presenceFrame,
  signalFrame,
  callJoinFrame,
  callUpdateFrame,
  callLeaveFrame,
  deleteFrame,
  kickFrame,
  banFrame,
  unbanFrame,
  pingFrame,
]);
export type ClientFrame = z.infer<typeof clientFrame>;
export const CLIENT_FRAME_TYPES = clientFrame.options.map((o) => o.shape.type.value);
/** Client frames paid from the signaling budget (ROOM_SIGNAL_RATE_PER_S / ROOM_SIGNAL_BURST), not the chat one. */
export const SIGNALING_FRAME_TYPES: readonly string[] = ["signal", "call.join", "call.update", "call.leave"];

// ---------------------------------------------------------------------------------------------------------
// Server -> client

export const chatMessage = z.object({
  /** monotonic per room, starting at 1 */
  id: z.number().int().positive(),
  userId,
  name: z.string().optional(),
  text: z.string(),
  /** server time, unix milliseconds */
  at: z.number().int(),
  /** set when a moderator deleted it (text is then empty) */
  deleted: z.literal(true).optional(),
});
export type ChatMessage = z.infer<typeof chatMessage>;

export const presenceEntry = z.object({
  userId,
  role,
  name: z.string().optional(),
  avatar: webUrl.optional(),
  /** how many connections (tabs, devices) the user has open in this room */
  connections: z.number().int().positive(),
  state: z.record(z.string(), z.unknown()),
});
export type PresenceEntry = z.infer<typeof presenceEntry>;

export const streamInfo = z.object({
  streamId: z.string(),
  status: z.enum(["starting", "live", "ended"]),
  playbackUrl: webUrl.optional(),
  /** `low`: the playback URL is low-latency HLS (players should run in their low-latency mode) */
  latency: z.enum(["low"]).optional(),
  vodUrl: webUrl.optional(),
  /** storage key of the recording's playlist (kept by the room to build viewers' URLs; not sent to clients of API streams) */
  vodKey: z.string().optional(),
  /**
   * the renditions left after the media node shed rungs it could not encode in real time (`stream.degraded`);
   * absent: every rendition the stream went live with
   */
  renditions: z.array(z.string().max(32)).max(16).optional(),
  /** unix ms the broadcast started (its first `stream.started`), when the room saw it */
  startedAt: z.number().int().optional(),
  /** unix ms of the event that set this */
  updatedAt: z.number().int(),
});

export const roomInfo = z.object({
  roomId: z.string(),
  /** latest live stream state of the room, from `stream.*` / `media.ready` events */
  stream: streamInfo.optional(),
});
export type RoomInfo = z.infer<typeof roomInfo>;

/** Presence in a big room: who is counted, and the few users worth naming. */
export const presenceSummary = z.object({
  /** users present (a user with several tabs counts once, unless a full shard placed tabs apart) */
  users: z.number().int().nonnegative(),
  /** open connections */
  connections: z.number().int().nonnegative(),
  /** users per role */
  byRole: z.object({ viewer: z.number().int().nonnegative(), member: z.number().int().nonnegative(), moderator: z.number().int().nonnegative(), broadcaster: z.number().int().nonnegative() }),
  /** present broadcasters and moderators (bounded list) */
  featured: z.array(presenceEntry),
  /** users who chatted last, newest first (bounded list; they may have left since) */
  recentChatters: z.array(z.object({ userId, name: z.string().optional(), at: z.number().int() })),
  /** id of the newest chat message: a client that saw an older one last missed messages and can resume */
  lastMessageId: z.number().int().nonnegative(),
  at: z.number().int(),
});
export type PresenceSummary = z.infer<typeof presenceSummary>;

/** Most featured users (broadcasters and moderators) a summary names. */
export const SUMMARY_FEATURED_MAX = 50;
/** Most recent chatters a summary names. */
export const SUMMARY_CHATTERS_MAX = 20;

export const welcomeFrame = z.object({
  type: z.literal("welcome"),
  /**
   * How presence works in this room: "small" (or absent): `presence` is the user list and `join`/`leave`/`update`
   * follow; "big": `presence` holds the featured users only, `summary` the counts, and `summary` frames follow.
   */
  mode: z.enum(["small", "big"]).optional(),
  /** big rooms: the presence summary at join time */
  summary: presenceSummary.optional(),
  connectionId: z.string(),
  user: z.object({ userId, role, name: z.string().optional(), avatar: z.string().optional() }),
  /**
   * Users present, the newcomer included. In a very large room this holds the first ones only (the welcome
   * stays well below the platform's 1 MiB message limit); the rest follow at once as `join` frames.
   */
  presence: z.array(presenceEntry),
  /** how many users are present in all (length of `presence` plus those that follow as `join` frames) */
  presenceTotal: z.number().int().nonnegative(),
  /** the last ROOM_WELCOME_MESSAGES messages, or, when the client connected with `?since=<id>`, the ones after it */
  messages: z.array(chatMessage),
  room: roomInfo,
  /**
   * Present when the client connected with `?since=`: `complete: false` means more were missed than the
   * server replays (ROOM_RESUME_MAX); `messages` then holds the latest ones and the client should refetch
   * the gap over HTTP (`GET /parties/room/<id>/history?before=<oldest id it got>`).
   */
  resume: z.object({ since: z.number().int().nonnegative(), complete: z.boolean() }).optional(),
  /**
   * This connection's signaling budget (`signal` and `call.*` frames): `ratePerS` sustained, `burst` at once.
   * Client libraries pace their signaling to it, so a burst of ICE candidates is never refused.
   */
  signalBudget: z.object({ ratePerS: z.number().positive(), burst: z.number().int().positive() }).optional(),
});

export const joinFrame = z.object({ type: z.literal("join"), user: presenceEntry });
export const leaveFrame = z.object({ type: z.literal("leave"), userId });
/** connection count or state of a present user changed */
export const updateFrame = z.object({ type: z.literal("update"), user: presenceEntry });
export const messageFrame = z.object({ type: z.literal("message"), message: chatMessage, clientId: z.string().optional() });
export const deletedFrame = z.object({ type: z.literal("deleted"), messageId: z.number().int(), by: userId });
export const commentOutFrame = z.object({
  type: z.literal("comment"),
  userId,
  name: z.string().optional(),
  text: z.string(),
  at: z.number().int(),
});
/** counts per emoji since the previous `reactions` frame */
export const reactionsFrame = z.object({ type: z.literal("reactions"), counts: z.record(z.string(), z.number().int().positive()), at: z.number().int() });
export const signalOutFrame = z.object({
  type: z.literal("signal"),
  /** connection id of the sender (set by the server, cannot be forged): address replies to it with `to` */
  from: z.string(),
  /** the sender's user id, from its verified token (so a receiver knows who, not only which socket) */
  fromUserId: userId,
  kind: z.enum(SIGNAL_KINDS),
  sdp: z.string().optional(),
  candidate: iceCandidate.optional(),
});

/** One peer of a call: one connection (a user in two tabs is two peers). */
export const callPeer = z.object({
  connectionId: z.string(),
  userId,
  role,
  name: z.string().optional(),
  avatar: webUrl.optional(),
  media: mediaState,
  /** unix ms this connection joined the call */
  joinedAt: z.number().int(),
});
export type CallPeer = z.infer<typeof callPeer>;

/** The answer to `call.join`, to the joining connection only. */
export const callWelcomeFrame = z.object({
  type: z.literal("call.welcome"),
  /** the `id` of the `call.join` it answers */
  id: z.string().optional(),
  /** this connection as the other peers see it */
  self: callPeer,
  /** the other peers, oldest first: the newcomer sends each of them the first offer */
  peers: z.array(callPeer),
  /** most peers the call takes (CALL_MAX_PEERS), the joiner included */
  maxPeers: z.number().int().positive(),
  /** the signaling budget of each connection: `ratePerS` sustained, `burst` at once (client libraries pace to it) */
  signalBudget: z.object({ ratePerS: z.number().positive(), burst: z.number().int().positive() }),
});
/** Another connection joined the call. `replaces`: the connection it had before a drop (that peer is gone). */
export const peerJoinFrame = z.object({ type: z.literal("peer.join"), peer: callPeer, replaces: z.string().optional() });
/** A peer's media state changed. */
export const peerUpdateFrame = z.object({ type: z.literal("peer.update"), peer: callPeer });
/**
 * A peer left the call: `left` (it sent `call.leave`), `closed` (its socket closed: a closed tab, a drop, a kick),
 * `replaced` (the same user rejoined from a new connection, named in the `peer.join` that follows).
 */
export const peerLeaveFrame = z.object({
  type: z.literal("peer.leave"),
  connectionId: z.string(),
  userId,
  reason: z.enum(["left", "closed", "replaced"]),
});
/** This connection is no longer a peer: it asked to leave (`left`, with the `call.leave` id), or it was `replaced`. */
export const callLeftFrame = z.object({ type: z.literal("call.left"), id: z.string().optional(), reason: z.enum(["left", "replaced"]) });
/** a system event (stream.*, media.*) posted into the room */
export const eventFrame = z.object({ type: z.literal("event"), event: z.object({ id: z.string(), type: z.string(), time: z.string(), data: z.unknown() }).passthrough() });
export const moderationFrame = z.object({
  type: z.literal("moderation"),
  action: z.enum(["kick", "ban", "unban"]),
  userId,
  by: userId,
  reason: z.string().optional(),
});
export const errorFrame = z.object({
  type: z.literal("error"),
  /**
   * stable: bad_json, unknown_type, invalid_frame, rate_limited, forbidden, state_too_large, peer_not_found,
   * self_signal, not_in_call, call_full, call_unavailable, message_not_found, internal_error
   */
  code: z.string(),
  message: z.string(),
  /** for rate_limited: when the next frame will be accepted */
  retryAfterMs: z.number().int().nonnegative().optional(),
  /** the `type` of the client frame this answers, when known */
  ref: z.string().optional(),
  /** the `id` the client frame carried, when it had one */
  id: z.string().optional(),
});
export const pongFrame = z.object({ type: z.literal("pong"), id: z.string().optional(), at: z.number().int() });
/** big rooms only: the presence summary, at most every ROOM_SUMMARY_MS and only when it changed */
export const summaryFrame = presenceSummary.extend({ type: z.literal("summary") });
/**
 * The room grew into a big room: reconnect now, to the same URL with `?since=<last id>` (the socket closes with
 * 4010 next; some WebSocket stacks deliver that close late, this frame comes first).
 */
export const movedFrame = z.object({ type: z.literal("moved") });

const singleServerFrames = [
  welcomeFrame,
  joinFrame,
  leaveFrame,
  updateFrame,
  messageFrame,
  deletedFrame,
  commentOutFrame,
  reactionsFrame,
  signalOutFrame,
  callWelcomeFrame,
  peerJoinFrame,
  peerUpdateFrame,
  peerLeaveFrame,
  callLeftFrame,
  eventFrame,
  moderationFrame,
  errorFrame,
  pongFrame,
  summaryFrame,
  movedFrame,
] as const;
export const singleServerFrame = z.discriminatedUnion("type", singleServerFrames);
export type SingleServerFrame = z.infer<typeof singleServerFrame>;

/** Several room-wide frames coalesced into one WebSocket message, in order. */
export const batchFrame = z.object({ type: z.literal("batch"), frames: z.array(singleServerFrame) });

export const serverFrame = z.discriminatedUnion("type", [...singleServerFrames, batchFrame]);
export type ServerFrame = z.infer<typeof serverFrame>;
export type ServerFrameOf<T extends ServerFrame["type"]> = Extract<ServerFrame, { type: T }>;
/** The frames only call peers get. */
export type CallServerFrame = ServerFrameOf<"call.welcome" | "peer.join" | "peer.update" | "peer.leave" | "call.left">;

/** Flattens a received server message into its frames (a `batch` into its members). */
export function unbatch(frame: ServerFrame): SingleServerFrame[] {
  return frame.type === "batch" ? frame.frames : [frame];
}
