// Subject layout on NATS. An event's subject is its type name (`stream.live`, `media.ready`, ...), so
// consumers filter by type with ordinary NATS wildcards. Dead-lettered events go to `deadletter.<type>`.

import type { Envelope } from "../../../shared/envelope.ts";
import { eventTypes } from "../../../shared/events/index.ts";

/** The subject an event is published on: its type. */
export function subjectFor(event: Pick<Envelope, "type">): string {
  return event.type;
}

/** One wildcard per event-type family (`stream.>`, `media.>`, ...), derived from the schema map. */
export function eventSubjects(): string[] {
  return [...new Set(eventTypes.map((t) => `${t.split(".")[0]}.>`))].sort();
}

export const DEAD_LETTER_PREFIX = "deadletter";

export function deadLetterSubject(type: string): string {
  // Types come from a checked envelope, but a refused event may carry anything: keep the subject one valid token.
  const token = /^[A-Za-z0-9_.-]{1,64}$/.test(type) ? type : "unknown";
  return `${DEAD_LETTER_PREFIX}.${token}`;
}

/** Headers on a dead-lettered message, so an operator can see why without decoding the body. */
export const DEAD_LETTER_HEADERS = {
  reason: "Pulsecast-Dead-Letter-Reason",
  status: "Pulsecast-Dead-Letter-Status",
  subject: "Pulsecast-Original-Subject",
  streamSeq: "Pulsecast-Original-Seq",
} as const;
