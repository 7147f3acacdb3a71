// What a push carries and how the push service should treat it. Pure: the payload's size is checked where the
// notification enters (the API and the event ingress refuse one that would not fit), never truncated on send.
import { utf8ByteLength } from "../../../shared/encoding.ts";

/** The fields of a notification a push payload is made from. */
export interface PushSource {
  id: string;
  kind: string;
  title: string;
  body?: string;
  url?: string;
  at?: number;
}

/** The JSON text a device's service worker receives (`event.data.json()`). */
export function pushPayload(n: PushSource): string {
  return JSON.stringify({ id: n.id, kind: n.kind, title: n.title, ...(n.body !== undefined && { body: n.body }), ...(n.url !== undefined && { url: n.url }), ...(n.at !== undefined && { at: n.at }) });
}

/** Problem text when `n`'s payload is larger than `maxBytes`, else null. `at` is counted at its largest. */
export function pushPayloadProblem(n: PushSource, maxBytes: number): string | null {
  const bytes = utf8ByteLength(pushPayload({ ...n, at: n.at ?? 9_999_999_999_999 }));
  return bytes > maxBytes ? `push payload of ${bytes} bytes is over the ${maxBytes}-byte limit: shorten the title or body` : null;
}

export type Urgency = "very-low" | "low" | "normal" | "high";

/**
 * RFC 8030 delivery hints by kind: conversation-like kinds are urgent and stale within an hour; a live stream is
 * stale once it probably ended; everything else (a video is ready, ...) may wait a day for an offline device.
 */
export function pushHints(kind: string): { urgency: Urgency; ttlS: number } {
  if (kind === "mention" || kind === "dm" || kind === "message") return { urgency: "high", ttlS: 3600 };
  if (kind === "stream.live") return { urgency: "high", ttlS: 2 * 3600 };
  if (kind === "digest") return { urgency: "low", ttlS: 12 * 3600 };
  return { urgency: "normal", ttlS: 86_400 };
}

/**
 * The Topic (RFC 8030 §5.4, at most 32 base64url characters) of a notification's push: one per notification, so
 * when a retry follows a timed-out request the service may already have taken, the device gets it once (the
 * second replaces the first while undelivered).
 */
export async function pushTopic(notificationId: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(notificationId)));
  let s = "";
  for (const b of digest.subarray(0, 24)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").slice(0, 32);
}
