// Dead letters: events the edge refused for good (a permanent 4xx), parked in the DEADLETTER stream by the
// NATS -> HTTP bridge with the reason in headers. An operator lists them, fixes the cause (a schema mismatch
// after a partial deploy, a missing route), then redrives them: each goes back on its original subject and
// through the bridge again, and leaves the dead-letter stream.

import type { JetStreamClient, JetStreamManager } from "nats";
import { DEAD_LETTER_HEADERS } from "../../bus/subjects.ts";

export interface DeadLetter {
  seq: number;
  subject: string;
  originalSubject: string;
  reason: string;
  status?: number;
  /** the event id, when the body is an envelope */
  id?: string;
  time: string;
}

function isNotFound(error: unknown): boolean {
  return /no message found|not found/i.test(String((error as Error)?.message));
}

/** Every dead letter in the stream, oldest first (optionally only one event type). */
export async function listDeadLetters(jsm: JetStreamManager, stream: string, type?: string): Promise<{ letter: DeadLetter; data: Uint8Array }[]> {
  const { state } = await jsm.streams.info(stream);
  const out: { letter: DeadLetter; data: Uint8Array }[] = [];
  if (state.messages === 0) return out;
  for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
    let msg;
    try {
      msg = await jsm.streams.getMessage(stream, { seq });
    } catch (error) {
      if (isNotFound(error)) continue; // deleted (already redriven)
      throw error;
    }
    const originalSubject = msg.header?.get(DEAD_LETTER_HEADERS.subject) || msg.subject.replace(/^deadletter\./, "");
    if (type && originalSubject !== type) continue;
    let id: string | undefined;
    try {
      const body = msg.json<{ id?: unknown }>();
      if (typeof body?.id === "string") id = body.id;
    } catch {
      /* not JSON: listed without an id */
    }
    const status = Number(msg.header?.get(DEAD_LETTER_HEADERS.status));
    out.push({
      letter: {
        seq,
        subject: msg.subject,
        originalSubject,
        reason: msg.header?.get(DEAD_LETTER_HEADERS.reason) ?? "",
        ...(Number.isInteger(status) && status > 0 ? { status } : {}),
        ...(id ? { id } : {}),
        time: msg.time.toISOString(),
      },
      data: msg.data,
    });
  }
  return out;
}

/**
 * Puts dead letters back on their original subjects and removes them from the dead-letter stream.
 * The message id is new (the event id was already used in the events stream's duplicate window); the event
 * itself is unchanged, so the edge still deduplicates by its id.
 */
export async function redriveDeadLetters(js: JetStreamClient, jsm: JetStreamManager, stream: string, type?: string): Promise<DeadLetter[]> {
  const redriven: DeadLetter[] = [];
  for (const { letter, data } of await listDeadLetters(jsm, stream, type)) {
    await js.publish(letter.originalSubject, data, { msgID: `redrive-${stream}-${letter.seq}` });
    await jsm.streams.deleteMessage(stream, letter.seq, false);
    redriven.push(letter);
  }
  return redriven;
}
