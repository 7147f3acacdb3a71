import type { Envelope } from "../../../shared/envelope.ts";
import type { Env } from "../env.ts";
import { type EnqueueOptions, MAX_ENQUEUE_BATCH } from "./event-outbox.ts";

/** The outbox object a shard key maps to. Exported so operators' routes and tests reach the same object. */
export function outboxFor(env: Env, shardKey: string) {
  return env.EVENT_OUTBOX.getByName(shardKey);
}

/**
 * Hands events to the edge's outbox for reliable delivery to the media side (HTTP->NATS bridge).
 * Resolves once the outbox has stored them; delivery and retries happen later, driven by alarms.
 * `shardKey` picks the outbox object (e.g. the room id) so one busy room does not queue behind another;
 * events of one shard reach the bridge in the order they were handed over.
 * Rejects (storing nothing of that call) if an event is malformed or too large: a programming error.
 */
export async function sendToMediaSide(env: Env, events: Envelope[], shardKey: string, opts: EnqueueOptions = {}): Promise<void> {
  if (events.length === 0) return;
  if (!shardKey) throw new Error("sendToMediaSide: shardKey is empty");
  const outbox = outboxFor(env, shardKey);
  for (let i = 0; i < events.length; i += MAX_ENQUEUE_BATCH) {
    await outbox.enqueue(events.slice(i, i + MAX_ENQUEUE_BATCH), opts);
  }
}
