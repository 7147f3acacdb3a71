import { z } from "zod";
import { newEventId } from "./ids.ts";
import { type EventData, type EventDataInput, type EventType, eventSchemas, isEventType } from "./events/index.ts";

/** Envelope version. Bump when the envelope (not an event's data) changes shape. */
export const ENVELOPE_VERSION = 1;

/** The largest serialized event any hop accepts (bytes of JSON). */
export const MAX_EVENT_BYTES = 64 * 1024;

const envelopeShape = z.object({
  /** unique; the dedup key on every hop (Nats-Msg-Id, webhook-id, the edge's idempotency record) */
  id: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, "id must be 1-128 characters of [A-Za-z0-9_-]"),
  type: z.string().min(1).max(64),
  /** when the event happened, ISO 8601 */
  time: z.string().datetime({ offset: true }),
  /** who emitted it: `edge`, `media-node/<nodeId>`, ... */
  source: z.string().min(1).max(256),
  /** what it is about: `stream/<id>`, `user/<id>`, `room/<id>`, `media/<id>` */
  subject: z.string().min(1).max(256),
  data: z.unknown(),
  v: z.literal(ENVELOPE_VERSION),
});

export type Envelope<T extends EventType = EventType> = {
  [K in T]: { id: string; type: K; time: string; source: string; subject: string; data: EventData<K>; v: typeof ENVELOPE_VERSION };
}[T];

export type ParseResult = { ok: true; event: Envelope } | { ok: false; error: string };

function describe(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.join(".") : "(root)"}: ${issue.message}`)
    .join("; ");
}

/**
 * Checks an untrusted value against the envelope and its type's data schema.
 * Never throws: a malformed event yields a clear error and nothing else.
 */
export function parseEvent(value: unknown): ParseResult {
  const envelope = envelopeShape.safeParse(value);
  if (!envelope.success) return { ok: false, error: `malformed envelope: ${describe(envelope.error)}` };
  const { type } = envelope.data;
  if (!isEventType(type)) return { ok: false, error: `unknown event type '${type}'` };
  const data = eventSchemas[type].safeParse(envelope.data.data);
  if (!data.success) return { ok: false, error: `invalid ${type} data: ${describe(data.error)}` };
  return { ok: true, event: { ...envelope.data, type, data: data.data } as Envelope };
}

/** Parses JSON text (bounded by MAX_EVENT_BYTES) into a checked event. */
export function parseEventJson(text: string): ParseResult {
  if (text.length > MAX_EVENT_BYTES) return { ok: false, error: `event larger than ${MAX_EVENT_BYTES} bytes` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: "body is not valid JSON" };
  }
  return parseEvent(value);
}

export interface NewEventOptions {
  source: string;
  subject: string;
  id?: string;
  time?: Date;
}

/** Builds an event, checking its data against the schema (throws on a programming error). */
export function makeEvent<T extends EventType>(type: T, data: EventDataInput<T>, opts: NewEventOptions): Envelope<T> {
  const parsed = eventSchemas[type].parse(data);
  return {
    id: opts.id ?? newEventId(),
    type,
    time: (opts.time ?? new Date()).toISOString(),
    source: opts.source,
    subject: opts.subject,
    data: parsed,
    v: ENVELOPE_VERSION,
  } as Envelope<T>;
}
