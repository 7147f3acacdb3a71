// Signed event ingress from the NATS->HTTP bridge, and the bus's operator/test endpoints.
//
//   POST /hooks/events                       one event, signed the Standard Webhooks way (EDGE_INGRESS_SECRET),
//                                            or a batch of events (Content-Type BATCH_CONTENT_TYPE, see below)
//   GET  /internal/bus/stats                 ingress counters (Bearer INTERNAL_API_TOKEN), see stats.ts
//   POST /internal/bus/stats/reset           zero them (between benchmark phases)
//   GET  /internal/bus/outbox/:shard         the outbox of one room (`room/<roomId>`, or a bare room id) or
//                                            one inbox (`user/<userId>`): status, pending and dead letters
//   POST /internal/bus/outbox/:shard/requeue put that outbox's dead letters back in its queue
//
// Order of checks on /hooks/events, each refusal a JSON `{ error: { code, message } }` and no effect:
//   size (413, before reading more than MAX_EVENT_BYTES) -> signature and timestamp (401; 503 when no secret
//   is configured, so the bridge keeps the event) -> JSON and schema (400 malformed, 422 unknown type; links
//   must be http(s)) -> links allowed by ALLOW_HTTP_URLS (400 url_not_allowed) -> webhook-id equals the
//   envelope id (400) -> apply at the targets (503 if that fails, so the bridge retries).
// Nothing is parsed, and nothing internal is reached, before the signature has been checked.
// The answer is 2xx only once the effect is durably stored: `{ applied: true }` the first time,
// `{ duplicate: true }` for an event already applied, `{ ignored: true, reason }` for a valid event the edge
// has no use for (see dispatch.ts routeFor).
//
// A batch (shared/batch.ts: `Content-Type: application/vnd.pulsecast.batch+json`, body `{"batch":[...]}`,
// webhook-id = the batch id, signed once over the whole body) goes through the same checks as a whole: size
// (413 past MAX_BATCH_BYTES), signature (401), and "is it a batch at all" (400 malformed_batch). Past those the
// answer is 200 `{ results: [...] }`, one result per event in input order: an item that is not a valid event
// is `rejected` on its own (malformed_event / unknown_event_type / too_large / url_not_allowed), the valid ones are applied with
// ONE call per target object (dispatchBatch) and come back `applied`, `duplicate`, `ignored`, or `failed` when
// a target did not take them (the bridge retries only those). Counters in stats.ts stay per event.

import { Hono } from "hono";
import { type BatchItem, type EventResult, isBatchRequest, MAX_BATCH_BYTES, parseBatch } from "../../../shared/batch.ts";
import { type Envelope, MAX_EVENT_BYTES, parseEvent } from "../../../shared/envelope.ts";
import { verifyWebhook, WEBHOOK_ID } from "../../../shared/signing/webhooks.ts";
import { errorResponse } from "../auth/errors.ts";
import { roomEventTarget } from "../bigrooms/route.ts";
import type { AppEnv, Env } from "../env.ts";
import { readBodyLimited } from "../http/body.ts";
import { linkProblem } from "../http/links.ts";
import { pushSizeProblem } from "../inbox/events.ts";
import { requireInternalToken } from "../internal/auth.ts";
import { outboxCarrier } from "../outbox/carrier.ts";
import { type EdgeSettings, edgeSettings } from "../settings.ts";
import { fleetObject } from "../fleet/fleet-object.ts";
import { dispatchBatch, type EventTargets, dispatchEvent } from "./dispatch.ts";
import { ingressStats } from "./stats.ts";

/** The real targets: Durable Objects by name. */
export function objectTargets(env: Env): EventTargets {
  return {
    room: (roomId) => roomEventTarget(env, roomId),
    inbox: (userId) => env.Inbox.getByName(userId),
    stream: (streamId) => env.Stream.getByName(streamId),
    videos: (userId) => env.VideoLibrary.getByName(userId),
    fleet: () => fleetObject(env),
  };
}

export const ingressRoutes = new Hono<AppEnv>();

ingressRoutes.post("/hooks/events", async (c) => {
  const receivedAt = Date.now();
  ingressStats.receivedRequest();
  const refuse = (status: number, code: string, message: string) => {
    ingressStats.rejectedRequest(code);
    return errorResponse(status, code, message);
  };

  const batch = isBatchRequest(c.req.header("content-type"));
  const body = await readBodyLimited(c.req.raw, batch ? MAX_BATCH_BYTES : MAX_EVENT_BYTES);
  if (!body.ok) return refuse(413, "too_large", body.message);

  const settings = edgeSettings(c.env);
  const verified = await verifyWebhook(settings.edgeIngressSecret ?? [], c.req.raw.headers, body.text, {
    toleranceS: settings.ingressToleranceS,
  });
  if (!verified.ok) {
    // No secret configured is the edge's fault, not the sender's: 503 keeps the event at the bridge.
    const misconfigured = verified.reason === "no-secret";
    if (misconfigured) console.error("POST /hooks/events refused: EDGE_INGRESS_SECRET is not set");
    return refuse(misconfigured ? 503 : 401, verified.reason.replaceAll("-", "_"), verified.message);
  }

  if (batch) {
    const parsed = parseBatch(body.text);
    if (!parsed.ok) return refuse(parsed.code === "too_large" ? 413 : 400, parsed.code, parsed.error);
    return c.json({ results: await applyBatch(parsed.items.map((item) => withLinkPolicy(item, settings)), objectTargets(c.env), receivedAt) });
  }

  let value: unknown;
  try {
    value = JSON.parse(body.text);
  } catch {
    return refuse(400, "malformed_event", "body is not valid JSON");
  }
  const parsed = parseEvent(value);
  if (!parsed.ok) {
    const unknownType = parsed.error.startsWith("unknown event type");
    return refuse(unknownType ? 422 : 400, unknownType ? "unknown_event_type" : "malformed_event", parsed.error);
  }
  const event = parsed.event;
  const badLink = linkProblem(event, settings);
  if (badLink) return refuse(400, "url_not_allowed", badLink);
  const tooBig = pushSizeProblem(event, settings.pushMaxPayloadBytes);
  if (tooBig) return refuse(413, "push_payload_too_large", tooBig);
  // The signature covers webhook-id, and dedup keys on the envelope id: they must be the same id.
  if (event.id !== verified.id) {
    return refuse(400, "id_mismatch", `${WEBHOOK_ID} '${verified.id}' differs from the event id '${event.id}'`);
  }

  let result;
  try {
    result = await dispatchEvent(event, objectTargets(c.env));
  } catch (error) {
    ingressStats.failedEvent();
    console.error(`POST /hooks/events: ${event.type} ${event.id} not applied:`, error);
    return errorResponse(503, "apply_failed", `event ${event.id} could not be applied; retry later`);
  }
  ingressStats.handled(event.id, event.type, result.outcome, event.time, receivedAt);
  if (result.outcome === "applied") return c.json({ applied: true, id: event.id });
  if (result.outcome === "duplicate") return c.json({ duplicate: true, id: event.id });
  return c.json({ ignored: true, id: event.id, reason: result.reason });
});

/** A batch item whose links the edge refuses becomes a `rejected` result of its own. */
function withLinkPolicy(item: BatchItem, settings: EdgeSettings): BatchItem {
  if (!item.ok) return item;
  const problem = linkProblem(item.event, settings);
  if (problem) return { ok: false, result: { id: item.event.id, status: "rejected", code: "url_not_allowed", message: problem } };
  const tooBig = pushSizeProblem(item.event, settings.pushMaxPayloadBytes);
  return tooBig ? { ok: false, result: { id: item.event.id, status: "rejected", code: "push_payload_too_large", message: tooBig } } : item;
}

/** The valid items of a parsed batch applied in one go; results in input order, counted per event. */
async function applyBatch(items: BatchItem[], targets: EventTargets, receivedAt: number): Promise<EventResult[]> {
  const valid: Envelope[] = [];
  for (const item of items) if (item.ok) valid.push(item.event);
  const dispatched = valid.length > 0 ? await dispatchBatch(valid, targets) : [];
  let next = 0;
  return items.map((item): EventResult => {
    if (!item.ok) {
      ingressStats.rejectedRequest(item.result.code ?? "rejected");
      return item.result;
    }
    const result = dispatched[next++]!;
    if (result.status === "failed") ingressStats.failedEvent();
    else ingressStats.handled(item.event.id, item.event.type, result.status, item.event.time, receivedAt);
    return result;
  });
}

ingressRoutes.use("/internal/bus/*", requireInternalToken());

ingressRoutes.get("/internal/bus/stats", (c) => c.json(ingressStats.snapshot()));

ingressRoutes.post("/internal/bus/stats/reset", (c) => {
  ingressStats.reset();
  return c.json(ingressStats.snapshot());
});

const noSuchOutbox = (shard: string) => errorResponse(404, "not_found", `no outbox '${shard}': use room/<roomId>, user/<userId> or videos/<userId>`);

ingressRoutes.get("/internal/bus/outbox/:shard", async (c) => {
  const carrier = outboxCarrier(c.env, c.req.param("shard"));
  if (!carrier) return noSuchOutbox(c.req.param("shard"));
  const [status, pending, deadLetters] = await Promise.all([carrier.outboxStatus(), carrier.outboxPending(100), carrier.outboxDeadLetters(100)]);
  return c.json({
    shard: c.req.param("shard"),
    ...status,
    pendingEvents: pending.map((body) => JSON.parse(body) as unknown),
    deadLetterEvents: deadLetters.map(({ body, ...rest }) => ({ ...rest, event: JSON.parse(body) as unknown })),
  });
});

ingressRoutes.post("/internal/bus/outbox/:shard/requeue", async (c) => {
  const carrier = outboxCarrier(c.env, c.req.param("shard"));
  if (!carrier) return noSuchOutbox(c.req.param("shard"));
  return c.json(await carrier.requeueDeadLetters());
});
