// POST /events: a signed event from the edge, stored in JetStream before we answer 2xx.
//
// Checks run cheapest and least trusting first: size, then signature and timestamp (nothing unauthenticated
// is parsed), then the envelope and its type's schema. The webhook-id must be the event id, because that id
// is the dedup key on every hop: a replayed request (same id) is stored once and answered 2xx again, so the
// edge's outbox stops retrying it.

import { type EventType } from "../../../../shared/events/index.ts";
import { parseEventJson, type Envelope } from "../../../../shared/envelope.ts";
import { verifyWebhook, WEBHOOK_ID } from "../../../../shared/signing/webhooks.ts";
import type { Stored } from "../../bus/publish.ts";

/**
 * The only events the edge may put on the bus; anything else is refused with 422. The first four are the
 * issue's list; `notification.sent` is the inbox's answer to a `notification.requested` (the edge ingress sends
 * it back through its outbox), so it must be taken too or every answer would be dead-lettered at the edge.
 * `notification.email` is an inbox asking the email notifier for one email (or a digest).
 */
export const ACCEPTED_TYPES: ReadonlySet<EventType> = new Set<EventType>([
  "media.uploaded",
  "chat.message",
  "presence.update",
  "notification.requested",
  "notification.sent",
  "notification.email",
]);

export interface IncomingEvent {
  headers: Record<string, string | string[] | undefined>;
  /** the exact body text (the signature covers these bytes) */
  body: string;
}

export interface HandlerDeps {
  secrets: string[];
  toleranceS: number;
  store(event: Envelope, json: string): Promise<Stored>;
  nowS?: () => number;
}

export interface Reply {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

export const refuse = (status: number, error: string, message: string): Reply => ({ status, body: { ok: false, error, message } });

/** The refusal for a type the edge may not put on the bus. */
export const notAcceptedMessage = (type: string) => `'${type}' is not taken from the edge; accepted: ${[...ACCEPTED_TYPES].join(", ")}`;

/**
 * The signature and timestamp check every request passes before anything in it is parsed: the webhook id it
 * carries, or the reply refusing it (401; 500 when this bridge has no secret, which is its own fault).
 */
export async function verifyRequest(req: IncomingEvent, deps: HandlerDeps): Promise<{ ok: true; id: string } | { ok: false; reply: Reply }> {
  const verified = await verifyWebhook(deps.secrets, req.headers, req.body, { toleranceS: deps.toleranceS, ...(deps.nowS ? { nowS: deps.nowS() } : {}) });
  if (verified.ok) return { ok: true, id: verified.id };
  return { ok: false, reply: refuse(verified.reason === "no-secret" ? 500 : 401, verified.reason, verified.message) };
}

export async function handleEvent(req: IncomingEvent, deps: HandlerDeps): Promise<Reply> {
  const verified = await verifyRequest(req, deps);
  if (!verified.ok) return verified.reply;
  const parsed = parseEventJson(req.body);
  if (!parsed.ok) {
    const unprocessable = /^(unknown event type|invalid )/.test(parsed.error);
    return refuse(unprocessable ? 422 : 400, unprocessable ? "invalid-event" : "malformed-body", parsed.error);
  }
  const event = parsed.event;
  if (!ACCEPTED_TYPES.has(event.type)) {
    return refuse(422, "type-not-accepted", notAcceptedMessage(event.type));
  }
  if (verified.id !== event.id) return refuse(400, "id-mismatch", `${WEBHOOK_ID} '${verified.id}' is not the event id '${event.id}'`);
  let stored: Stored;
  try {
    stored = await deps.store(event, req.body);
  } catch (error) {
    // Not stored: the edge's outbox keeps the event and retries.
    return { ...refuse(503, "not-stored", `JetStream did not store the event: ${(error as Error).message}`), headers: { "retry-after": "1" } };
  }
  return { status: stored.duplicate ? 200 : 202, body: { ok: true, id: event.id, duplicate: stored.duplicate, seq: stored.seq } };
}
