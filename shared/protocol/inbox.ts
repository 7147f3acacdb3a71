// WebSocket frames of the per-user inbox (`/parties/inbox/<userId>`), and the shapes its HTTP API returns.
// One schema per frame; the inbox parses every client frame with `inboxClientFrame`, and clients may parse
// what they receive with `inboxServerFrame`. Frames are JSON text.
//
// Ordering: every stored notification gets a per-user `seq` that only grows. Marking read "up to" a seq
// covers everything at or below it, so "mark all read" is a single number that every device can apply.

import { z } from "zod";
import { mediaId } from "../events/common.ts";
import { mediaStage } from "../events/media.ts";
import { webUrl } from "../urls.ts";

/** Notification ids: the `notificationId` of a `notification.requested` event, or the event id for media events. */
export const notificationId = z.string().min(1).max(128);
const seq = z.number().int().positive();

/** A notification as stored by the inbox and delivered to clients. */
export const inboxNotification = z.object({
  id: notificationId,
  /** per-user, strictly increasing; order of arrival at the inbox */
  seq,
  /** `notification.requested`'s kind (default "notification"), or `media.ready` / `media.failed` */
  kind: z.string().max(64),
  title: z.string().max(200),
  body: z.string().max(2000).optional(),
  url: webUrl.optional(),
  /** free-form JSON from the requester (or the media event's data) */
  data: z.record(z.string(), z.unknown()).optional(),
  /** when the inbox stored it, unix ms */
  at: z.number().int().nonnegative(),
  read: z.boolean(),
  /** the event that created it (dedup key on every hop) */
  eventId: z.string().max(128),
});
/**
 * `data` as a shallow JSON type: `unknown` makes the Workers RPC types drop the whole value (it might not be
 * serializable), and a recursive JSON type is too deep for them.
 */
export type JsonData = Record<string, string | number | boolean | null | object>;
export type InboxNotification = Omit<z.infer<typeof inboxNotification>, "data"> & { data?: JsonData };

// ---- client -> server ----------------------------------------------------------------------------------

const readFields = {
  ids: z.array(notificationId).min(1).max(100).optional(),
  upTo: seq.optional(),
  all: z.literal(true).optional(),
};
const exactlyOne = (r: { ids?: unknown; upTo?: unknown; all?: unknown }) =>
  [r.ids, r.upTo, r.all].filter((v) => v !== undefined).length === 1;
const exactlyOneMessage = { message: "give exactly one of ids (1-100), upTo (a seq) or all: true" };

/**
 * Mark notifications read: by id (up to 100), everything up to a seq, or all.
 * Exactly one of `ids`, `upTo`, `all`. Every open connection of the user is told (`read` frame).
 */
export const readRequest = z.object(readFields).strict().refine(exactlyOne, exactlyOneMessage);
export type ReadRequest = z.infer<typeof readRequest>;

export const MAX_PAGE_LIMIT = 100;
export const DEFAULT_PAGE_LIMIT = 20;

const listFields = {
  before: seq.optional(),
  limit: z.number().int().min(1).max(MAX_PAGE_LIMIT).optional(),
  unreadOnly: z.boolean().optional(),
};

/** A page of the inbox, newest first: notifications with seq < `before` (absent: from the newest). */
export const listRequest = z.object(listFields).strict();
export type ListRequest = z.infer<typeof listRequest>;

/** Every frame a client may send. Anything else gets an `error` frame and the connection stays open. */
export const inboxClientFrame = z.discriminatedUnion("type", [
  /** mark read; answered by a `read` frame to every connection of the user */
  z.object({ type: z.literal("read"), ...readFields }).strict().refine(exactlyOne, exactlyOneMessage),
  /** page the inbox; answered by a `list` frame to this connection */
  z.object({ type: z.literal("list"), ...listFields }).strict(),
]);
export type InboxClientFrame = z.infer<typeof inboxClientFrame>;
export const inboxClientFrameTypes: readonly string[] = inboxClientFrame.options.map((o) => o.shape.type.value);

// ---- server -> client ----------------------------------------------------------------------------------

export const inboxErrorCode = z.enum([
  /** frame larger than the inbox's max frame size (see `welcome.limits`) */
  "frame_too_large",
  /** binary frame, or text that is not JSON */
  "bad_json",
  /** JSON without a known `type` */
  "unknown_type",
  /** a known `type` whose fields are wrong */
  "bad_frame",
  /** more frames than the per-connection rate allows; retry after `retryAfterMs` (keeps on: close 1008) */
  "rate_limited",
  /** the user already has the maximum number of open connections; sent just before close 1008 */
  "too_many_connections",
]);
export type InboxErrorCode = z.infer<typeof inboxErrorCode>;

export const inboxErrorFrame = z.object({
  type: z.literal("error"),
  code: inboxErrorCode,
  message: z.string(),
  /** for `rate_limited`: when the next frame will be accepted */
  retryAfterMs: z.number().int().nonnegative().optional(),
});

export const inboxWelcomeFrame = z.object({
  type: z.literal("welcome"),
  connectionId: z.string(),
  user: z.object({ userId: z.string(), name: z.string().optional(), avatar: z.string().optional() }),
  unread: z.number().int().nonnegative(),
  /** the most recent unread notifications, newest first (what a user who was offline missed) */
  notifications: z.array(inboxNotification),
  /** true when there are more unread than `notifications` holds: page the rest with `list` or GET /inbox */
  more: z.boolean(),
  limits: z.object({
    maxFrameBytes: z.number().int(),
    maxConnections: z.number().int(),
    pageLimit: z.number().int(),
    /** client frames per second per connection, sustained (bursts up to twice that) */
    ratePerS: z.number(),
  }),
});

/** A new notification, pushed to every open connection of the user. */
export const inboxNotificationFrame = z.object({
  type: z.literal("notification"),
  notification: inboxNotification,
  unread: z.number().int().nonnegative(),
});

/** Notifications were marked read (by this or another device of the user). */
export const inboxReadFrame = z.object({
  type: z.literal("read"),
  /** these ids are now read ... */
  ids: z.array(notificationId).optional(),
  /** ... or everything with seq <= upTo is */
  upTo: seq.optional(),
  unread: z.number().int().nonnegative(),
});

/** Live-only progress of the user's media processing (not stored). */
export const inboxProgressFrame = z.object({
  type: z.literal("progress"),
  mediaId,
  stage: mediaStage,
  percent: z.number().min(0).max(100),
});

/** One page of the inbox, newest first; `nextBefore` pages on (absent at the end). */
export const inboxPage = z.object({
  notifications: z.array(inboxNotification),
  unread: z.number().int().nonnegative(),
  nextBefore: seq.optional(),
});
export type InboxPage = Omit<z.infer<typeof inboxPage>, "notifications"> & { notifications: InboxNotification[] };

export const inboxListFrame = z.object({ type: z.literal("list") }).extend(inboxPage.shape);

export const inboxServerFrame = z.discriminatedUnion("type", [
  inboxWelcomeFrame,
  inboxNotificationFrame,
  inboxReadFrame,
  inboxProgressFrame,
  inboxListFrame,
  inboxErrorFrame,
]);
export type InboxServerFrame = z.infer<typeof inboxServerFrame>;

/** Result of marking read (HTTP `POST /inbox/read` and the DO method). */
export const readResult = z.object({
  marked: z.number().int().nonnegative(),
  unread: z.number().int().nonnegative(),
});
export type ReadResult = z.infer<typeof readResult>;
