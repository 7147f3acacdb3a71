// Subject layout on NATS. An event's subject is its type name (`stream.live`, `media.ready`, ...), so
// consumers filter by type with ordinary NATS wildcards. Dead-lettered events go to `deadletter.<type>`.
//
// The types only the edge emits live in a stream of their own (EDGE_EVENTS), everything else in EVENTS. The
// NATS -> HTTP bridge consumes EVENTS whole, so the edge's own events are never fetched just to be dropped.
// (One consumer with several filter subjects needs nats-server 2.10; the stream split works on 2.9 and needs
// no filter at all.) A type either side may emit (notification.requested) stays in EVENTS, and the bridge's
// source check keeps the edge's copies from going back.

import type { Envelope } from "../../../shared/envelope.ts";
import { type EventType, eventTypes } from "../../../shared/events/index.ts";

/** The subject an event is published on: its type. */
export function subjectFor(event: Pick<Envelope, "type">): string {
  return event.type;
}

/** Types only the edge emits (through the HTTP -> NATS bridge); the edge never takes them back. */
export const EDGE_ONLY_TYPES: readonly EventType[] = ["media.uploaded", "chat.message", "presence.update", "notification.sent", "notification.email"];

/**
 * Types no stream keeps: news of the moment, sent with a plain NATS publish (a lost one is replaced by the next).
 * The NATS -> HTTP bridge forwards them to the edge from a queue subscription.
 */
export const EPHEMERAL_TYPES: readonly EventType[] = ["node.heartbeat"];

/** The subject media nodes send their heartbeats on (node.heartbeat, see shared/events/fleet.ts). */
export const HEARTBEAT_SUBJECT = "node.heartbeat";

/** Types a media node emits: the only subjects its NATS user may publish. */
export const MEDIA_NODE_TYPES: readonly EventType[] = ["stream.started", "stream.live", "stream.ended", "stream.degraded", "media.progress", "media.playable", "media.ready", "media.failed"];

/**
 * Types that are jobs rather than news: a finished upload (`media.uploaded`, from the edge) is stored in the
 * VOD job stream (work-queue retention), where exactly one media node's worker takes it and the ack removes it.
 */
export const JOB_TYPES: readonly EventType[] = ["media.uploaded"];

/**
 * Subjects of one family (`media`): the family wildcard when every type of it is in `types`, else each type.
 * New types of a family land in the right stream without a change here as long as the family is not split.
 */
function subjectsOf(types: readonly EventType[]): string[] {
  const out: string[] = [];
  for (const family of [...new Set(eventTypes.map((t) => t.split(".")[0]!))].sort()) {
    const all = eventTypes.filter((t) => t.startsWith(`${family}.`));
    const mine = all.filter((t) => types.includes(t));
    if (mine.length === all.length) out.push(`${family}.>`);
    else out.push(...mine);
  }
  return out;
}

/** Subjects of the EVENTS stream: every type except the edge-only ones. */
export function nodeEventSubjects(): string[] {
  return subjectsOf(eventTypes.filter((t) => !EDGE_ONLY_TYPES.includes(t) && !EPHEMERAL_TYPES.includes(t)));
}

/** Subjects of the EDGE_EVENTS stream: the edge-only types that are not jobs. */
export function edgeEventSubjects(): string[] {
  return subjectsOf(EDGE_ONLY_TYPES.filter((t) => !JOB_TYPES.includes(t)));
}

/** Subjects of the VOD job stream. */
export function jobSubjects(): string[] {
  return [...JOB_TYPES];
}

/** One wildcard per event-type family (`stream.>`, `media.>`, ...) of the stored types, derived from the schema map. */
export function eventSubjects(): string[] {
  return [...new Set(eventTypes.filter((t) => !EPHEMERAL_TYPES.includes(t)).map((t) => `${t.split(".")[0]}.>`))].sort();
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
