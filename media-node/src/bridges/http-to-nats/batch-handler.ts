// POST /events with Content-Type application/vnd.pulsecast.batch+json: many events from the edge's outbox in one
// signed request (shared/batch.ts). Same checks as one event (handler.ts), in the same order, with one
// signature check for the whole body; then each event on its own:
//
//   - not an envelope / unknown type / bad data / too large   -> `rejected` (parseBatch's code)
//   - a type the edge may not put on the bus                  -> `rejected`, code type_not_accepted
//   - stored by JetStream (msgID = event id)                  -> `stored`, or `duplicate` if it had it already
//   - JetStream did not store it (timeout, no stream)         -> `failed`, code not_stored (the outbox retries it)
//
// The answer is 200 `{results:[...]}` (one per item, in order) only after JetStream answered for every event.
// If nothing could be stored at all (NATS away) the answer is 503 as a whole, like a single event's, so the
// outbox keeps the batch rather than reading per-event failures. The webhook-id is the batch id, not an event
// id: every event keeps its own id as its dedup key (the JetStream msgID).

import { type EventResult, parseBatch } from "../../../../shared/batch.ts";
import type { Envelope } from "../../../../shared/envelope.ts";
import { ACCEPTED_TYPES, type HandlerDeps, type IncomingEvent, notAcceptedMessage, refuse, type Reply, verifyRequest } from "./handler.ts";

export async function handleBatch(req: IncomingEvent, deps: HandlerDeps): Promise<Reply> {
  const verified = await verifyRequest(req, deps);
  if (!verified.ok) return verified.reply;
  const parsed = parseBatch(req.body);
  if (!parsed.ok) return refuse(parsed.code === "too_large" ? 413 : 400, parsed.code.replaceAll("_", "-"), parsed.error);

  const results: (EventResult | undefined)[] = [];
  const toStore: { index: number; event: Envelope }[] = [];
  parsed.items.forEach((item, index) => {
    if (!item.ok) return results.push(item.result);
    const { event } = item;
    if (!ACCEPTED_TYPES.has(event.type)) {
      return results.push({ id: event.id, status: "rejected", code: "type_not_accepted", message: notAcceptedMessage(event.type) });
    }
    results.push(undefined);
    toStore.push({ index, event });
  });

  // All publishes are issued before any answer is awaited (one pipelined round of acks, not one per event);
  // NATS keeps them in the order they were written, so the stream holds them in batch order.
  const outcomes = await Promise.allSettled(toStore.map(({ event }) => deps.store(event, JSON.stringify(event))));
  let failed = 0;
  outcomes.forEach((outcome, i) => {
    const { index, event } = toStore[i]!;
    if (outcome.status === "fulfilled") {
      results[index] = { id: event.id, status: outcome.value.duplicate ? "duplicate" : "stored" };
    } else {
      failed++;
      results[index] = { id: event.id, status: "failed", code: "not_stored", message: `JetStream did not store the event: ${(outcome.reason as Error)?.message ?? outcome.reason}` };
    }
  });
  if (failed > 0 && failed === toStore.length) {
    const first = results.find((r) => r?.status === "failed");
    return { ...refuse(503, "not-stored", `JetStream stored none of the batch's ${failed} events: ${first?.message ?? ""}`), headers: { "retry-after": "1" } };
  }
  return { status: 200, body: { results } };
}
