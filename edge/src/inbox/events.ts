// What an event from the media side means for one user's inbox. Pure: the Inbox object applies the result.
import type { Envelope } from "../../../shared/envelope.ts";
import type { InboxServerFrame, JsonData } from "../../../shared/protocol/inbox.ts";
import { pushPayloadProblem } from "../notify/push-message.ts";
import type { NewNotification } from "./store.ts";

/** Events the inbox accepts (the ingress and the internal API route only these here). */
export const INBOX_EVENT_TYPES = ["notification.requested", "media.ready", "media.failed", "media.progress"] as const;

export type InboxEffect =
  /** keep until read, and deliver to every open connection */
  | { ok: true; kind: "store"; notification: NewNotification }
  /** deliver to open connections only (progress is stale by the time anyone reconnects) */
  | { ok: true; kind: "live"; frame: InboxServerFrame }
  | { ok: false; error: string };

/** Drops keys whose value is undefined, so stored JSON and frames carry only what was set. */
function defined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * What `event` does to the inbox of `userId`. A notification whose push payload would be larger than
 * `maxPushBytes` is refused here, at the door (API and ingress alike), rather than cut short on its way to a device.
 */
export function inboxEffectOf(event: Envelope, userId: string, maxPushBytes = Infinity): InboxEffect {
  const effect = effectOf(event, userId);
  if (effect.ok && effect.kind === "store") {
    const problem = pushPayloadProblem(effect.notification, maxPushBytes);
    if (problem) return { ok: false, error: `${event.type} ${event.id}: ${problem}` };
  }
  return effect;
}

/**
 * For an event bound for an inbox: why its notification cannot be pushed (too large), else null. The ingress
 * refuses such an event for good (a retry would not shrink it); the internal API answers 413.
 */
export function pushSizeProblem(event: Envelope, maxPushBytes: number): string | null {
  const owner = event.type === "notification.requested" ? event.data.userId : event.type === "media.ready" || event.type === "media.failed" ? event.data.ownerId : undefined;
  if (owner === undefined) return null;
  const effect = inboxEffectOf(event, owner, maxPushBytes);
  return effect.ok ? null : effect.error;
}

function effectOf(event: Envelope, userId: string): InboxEffect {
  switch (event.type) {
    case "notification.requested": {
      const d = event.data;
      if (d.userId !== userId) return { ok: false, error: `notification for user '${d.userId}' reached the inbox of '${userId}'` };
      const n: NewNotification = { id: d.notificationId, kind: d.kind ?? "notification", title: d.title, eventId: event.id };
      if (d.body !== undefined) n.body = d.body;
      if (d.url !== undefined) n.url = d.url;
      // Events arrive as JSON (bridge, internal API), so their free-form data is JSON.
      if (d.data !== undefined) n.data = d.data as JsonData;
      return { ok: true, kind: "store", notification: n };
    }
    case "media.ready":
    case "media.failed":
    case "media.progress": {
      const owner = event.data.ownerId;
      if (owner === undefined) return { ok: false, error: `${event.type} without ownerId has no inbox to go to` };
      if (owner !== userId) return { ok: false, error: `${event.type} for owner '${owner}' reached the inbox of '${userId}'` };
      if (event.type === "media.progress") {
        const { mediaId, stage, percent } = event.data;
        return { ok: true, kind: "live", frame: { type: "progress", mediaId, stage, percent } };
      }
      // The event id names the notification: one media item can be ready more than once (re-transcode),
      // and each is news; a redelivered event is caught by the ledger before it gets here.
      if (event.type === "media.ready") {
        const d = event.data;
        return {
          ok: true,
          kind: "store",
          notification: { id: event.id, kind: "media.ready", title: "Your media is ready", url: d.playbackUrl, data: defined(d), eventId: event.id },
        };
      }
      const d = event.data;
      return {
        ok: true,
        kind: "store",
        notification: { id: event.id, kind: "media.failed", title: "Your media could not be processed", body: d.reason, data: defined(d), eventId: event.id },
      };
    }
    default:
      return { ok: false, error: `the inbox does not take '${event.type}' events (only ${INBOX_EVENT_TYPES.join(", ")})` };
  }
}
