// Event batches: many envelopes in one signed request, for the hops where the cost per request (signing, one
// HTTP round trip, one Durable Object call and commit) dominates the cost per event — NATS->HTTP bridge -> edge
// ingress, and edge outbox -> HTTP->NATS bridge.
//
// Wire format (an extension of the single-event form; both are accepted on the same endpoint):
//   Content-Type: application/vnd.pulsecast.batch+json
//   webhook-id:   a batch id (`bat_<ulid>`), NOT an event id — every event keeps its own id as the dedup key
//   body:         {"batch":[<envelope>, ...]}  (1..MAX_BATCH_EVENTS envelopes, at most MAX_BATCH_BYTES)
//   signed once over the whole body, the Standard Webhooks way (shared/signing/webhooks.ts).
// Answer (200 whenever the batch itself was acceptable): {"results":[{id, status, code?, message?}, ...]},
// one per event in the same order. Whole-batch refusals (signature, size, not a batch) use the same status codes
// as single events. The sender acts per event: `applied` / `stored` / `duplicate` / `ignored` are done,
// `rejected` is permanent (dead-letter it), `failed` is temporary (retry it).

import { z } from "zod";
import { MAX_EVENT_BYTES, type Envelope, parseEvent } from "./envelope.ts";
import { ulid } from "./ids.ts";

export const BATCH_CONTENT_TYPE = "application/vnd.pulsecast.batch+json";
export const MAX_BATCH_EVENTS = 100;
/** Room for MAX_BATCH_EVENTS typical events; a single event may still be up to MAX_EVENT_BYTES. */
export const MAX_BATCH_BYTES = 1024 * 1024;

export type EventOutcome = "applied" | "stored" | "duplicate" | "ignored" | "rejected" | "failed";

export interface EventResult {
  /** the event's id (or, for an item that is not even an envelope, its index as `#<n>`) */
  id: string;
  status: EventOutcome;
  /** machine-readable reason for `rejected` / `failed` / `ignored` */
  code?: string;
  message?: string;
}

export const eventResultSchema = z.object({
  id: z.string(),
  status: z.enum(["applied", "stored", "duplicate", "ignored", "rejected", "failed"]),
  code: z.string().optional(),
  message: z.string().optional(),
});
export const batchResponseSchema = z.object({ results: z.array(eventResultSchema) });

/** Is this request a batch (by content type)? */
export function isBatchRequest(contentType: string | null | undefined): boolean {
  return (contentType ?? "").split(";")[0]!.trim().toLowerCase() === BATCH_CONTENT_TYPE;
}

export function newBatchId(): string {
  return `bat_${ulid()}`;
}

/** Serializes events as a batch body; the caller signs it with a batch id. */
export function batchBody(events: readonly Envelope[]): string {
  if (events.length === 0 || events.length > MAX_BATCH_EVENTS) throw new Error(`a batch holds 1..${MAX_BATCH_EVENTS} events, not ${events.length}`);
  return JSON.stringify({ batch: events });
}

export type BatchItem = { ok: true; event: Envelope } | { ok: false; result: EventResult };
export type ParsedBatch = { ok: true; items: BatchItem[] } | { ok: false; code: string; error: string };

/**
 * Parses a batch body (already size-checked by the caller). A body that is not a batch is refused whole;
 * an item that is not a valid event becomes a `rejected` result on its own, and the rest go on.
 */
export function parseBatch(text: string): ParsedBatch {
  if (text.length > MAX_BATCH_BYTES) return { ok: false, code: "too_large", error: `batch larger than ${MAX_BATCH_BYTES} bytes` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: "malformed_batch", error: "body is not valid JSON" };
  }
  const list = (value as { batch?: unknown } | null)?.batch;
  if (typeof value !== "object" || value === null || !Array.isArray(list)) {
    return { ok: false, code: "malformed_batch", error: 'a batch body is {"batch":[<event>, ...]}' };
  }
  if (list.length === 0 || list.length > MAX_BATCH_EVENTS) {
    return { ok: false, code: "malformed_batch", error: `a batch holds 1..${MAX_BATCH_EVENTS} events, not ${list.length}` };
  }
  const items = list.map((item, index): BatchItem => {
    const id = typeof (item as { id?: unknown })?.id === "string" ? (item as { id: string }).id.slice(0, 128) : `#${index}`;
    if (JSON.stringify(item).length > MAX_EVENT_BYTES) {
      return { ok: false, result: { id, status: "rejected", code: "too_large", message: `event larger than ${MAX_EVENT_BYTES} bytes` } };
    }
    const parsed = parseEvent(item);
    if (parsed.ok) return { ok: true, event: parsed.event };
    const code = parsed.error.startsWith("unknown event type") ? "unknown_event_type" : "malformed_event";
    return { ok: false, result: { id, status: "rejected", code, message: parsed.error } };
  });
  return { ok: true, items };
}

/** What a sender does with one event's result. */
export function resultAction(result: Pick<EventResult, "status">): "done" | "dead-letter" | "retry" {
  switch (result.status) {
    case "applied":
    case "stored":
    case "duplicate":
    case "ignored":
      return "done";
    case "rejected":
      return "dead-letter";
    case "failed":
      return "retry";
  }
}
