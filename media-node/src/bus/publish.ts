// Publishing one event to JetStream. The event id is the message id (Nats-Msg-Id), so a re-publish within the
// stream's duplicate window is dropped by the server and reported back as a duplicate.

import type { JetStreamClient } from "nats";
import { type Envelope, MAX_EVENT_BYTES } from "../../../shared/envelope.ts";
import { utf8 } from "../../../shared/encoding.ts";
import { subjectFor } from "./subjects.ts";

export interface Stored {
  stream: string;
  seq: number;
  /** true when JetStream already had this event id (nothing new stored) */
  duplicate: boolean;
}

export function encodeEvent(event: Envelope): Uint8Array {
  const bytes = utf8(JSON.stringify(event));
  if (bytes.length > MAX_EVENT_BYTES) throw new Error(`event ${event.id} is ${bytes.length} bytes, more than ${MAX_EVENT_BYTES}`);
  return bytes;
}

/** Resolves once JetStream has stored the event (or already had it); rejects on timeout or no stream. */
export async function publishEvent(js: JetStreamClient, event: Envelope, opts: { timeoutMs: number; bytes?: Uint8Array }): Promise<Stored> {
  const ack = await js.publish(subjectFor(event), opts.bytes ?? encodeEvent(event), { msgID: event.id, timeout: opts.timeoutMs });
  return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
}
