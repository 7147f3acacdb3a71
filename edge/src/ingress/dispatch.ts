// Where a verified event from the media side takes effect, and applying it there exactly once.
//
// Exactly-once is the target objects' job: each one records the event id in its AppliedLedger in the same
// transaction as the effect. An event with several targets (a media.ready for the owner's inbox and the
// room) is applied at each (in parallel); if one fails, the caller answers 5xx, the bridge retries, the targets
// that already applied it answer "duplicate" and only the missing one applies it. The ingress itself keeps no
// ledger: a second one could only disagree with the objects' (and would cost a round trip per event).

import { type Envelope, makeEvent } from "../../../shared/envelope.ts";
import { toBase64Url, utf8 } from "../../../shared/encoding.ts";
import type { Outcome } from "./stats.ts";

/** What Room.applyEvent and Inbox.applyEvent promise (DO RPC; dedup by event id inside the object). */
export interface RoomTarget {
  applyEvent(event: Envelope): Promise<{ applied: boolean }>;
}
export interface InboxTarget {
  applyEvent(event: Envelope): Promise<{ applied: boolean; connections: number }>;
}

/** The objects an event can reach, and the way back to the media side. Injected so routing is testable. */
export interface EventTargets {
  room(roomId: string): RoomTarget;
  inbox(userId: string): InboxTarget;
  /** stores events in the edge outbox (deduplicated by id when `once`) */
  toMediaSide(events: Envelope[], shardKey: string, opts: { once: boolean }): Promise<void>;
}

export type Route =
  | { kind: "objects"; rooms: string[]; inboxes: string[] }
  | { kind: "notification"; userId: string }
  | { kind: "ignored"; reason: string };

/**
 * Pure routing table. Valid events the edge has no use for are acknowledged as ignored (2xx) rather than
 * refused: the bridge forwards every subject of the stream, including ones that started at the edge
 * (chat.message, presence.update, media.uploaded), and a 4xx would fill its dead-letter subject with them.
 */
export function routeFor(event: Envelope): Route {
  switch (event.type) {
    case "stream.started":
    case "stream.live":
    case "stream.ended":
      // A stream's viewers are in the room named in the event, or else the room named after the stream.
      return { kind: "objects", rooms: [event.data.roomId ?? event.data.streamId], inboxes: [] };
    case "media.progress":
    case "media.ready":
    case "media.failed": {
      const room = event.data.roomId ?? (event.type === "media.ready" ? event.data.streamId : undefined);
      const rooms = room ? [room] : [];
      const inboxes = event.data.ownerId ? [event.data.ownerId] : [];
      if (rooms.length === 0 && inboxes.length === 0) return { kind: "ignored", reason: `${event.type} names neither an owner nor a room` };
      return { kind: "objects", rooms, inboxes };
    }
    case "notification.requested":
      return { kind: "notification", userId: event.data.userId };
    case "media.uploaded":
      return { kind: "ignored", reason: "media.uploaded starts at the edge; the edge does not take it back" };
    case "chat.message":
    case "presence.update":
      return { kind: "ignored", reason: `${event.type} starts at the edge; the edge does not take it back` };
    case "notification.sent":
      return { kind: "ignored", reason: "notification.sent is produced by the edge" };
    case "transcription.complete":
      return { kind: "ignored", reason: "transcription.complete has no edge consumer yet" };
  }
}

/**
 * The id of the notification.sent that answers a notification: derived from the user and notification id,
 * so a retried request (same event, or the requester's fresh event for the same notification, which the
 * inbox also refuses to store twice) yields the same answer event and the outbox (and JetStream) keep one.
 */
export async function sentEventId(userId: string, notificationId: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", utf8(`notification.sent\n${userId}\n${notificationId}`));
  return `evt_sent_${toBase64Url(new Uint8Array(digest)).slice(0, 32)}`;
}

/** Outbox shard for a user's notification.sent events (one user's answers stay in order). */
export const userShard = (userId: string) => `user/${userId}`;

export type DispatchResult = { outcome: Outcome; reason?: string };

/** Applies a checked event at its targets. Resolves only once every effect is durably stored; throws otherwise. */
export async function dispatchEvent(event: Envelope, targets: EventTargets): Promise<DispatchResult> {
  const route = routeFor(event);
  if (route.kind === "ignored") return { outcome: "ignored", reason: route.reason };

  if (route.kind === "notification") {
    if (event.type !== "notification.requested") throw new Error("unreachable: notification route for " + event.type);
    const result = await targets.inbox(route.userId).applyEvent(event);
    // Also on a duplicate: if the first attempt died between the inbox and the outbox, this is the only
    // chance to send the answer. Its id is derived from the notification, so when it was already stored the
    // outbox ignores it (and then the connection count of this retry, 0, does not matter).
    const sent = makeEvent(
      "notification.sent",
      {
        notificationId: event.data.notificationId,
        userId: event.data.userId,
        channel: result.connections > 0 ? "live" : "stored",
        connections: result.connections,
      },
      { source: "edge", subject: `user/${event.data.userId}`, id: await sentEventId(event.data.userId, event.data.notificationId) },
    );
    await targets.toMediaSide([sent], userShard(event.data.userId), { once: true });
    return { outcome: result.applied ? "applied" : "duplicate" };
  }

  // In parallel, and every attempt settled before answering: each target dedups on its own, so after a
  // partial failure the bridge's retry applies the event where it is missing and nowhere twice.
  const results = await Promise.allSettled([
    ...route.inboxes.map((userId) => targets.inbox(userId).applyEvent(event)),
    ...route.rooms.map((roomId) => targets.room(roomId).applyEvent(event)),
  ]);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
  return { outcome: results.some((r) => r.status === "fulfilled" && r.value.applied) ? "applied" : "duplicate" };
}
