import type { Envelope } from "../../../shared/envelope.ts";
import type { Env } from "../env.ts";

/**
 * Hands events to the edge's outbox for reliable delivery to the media side (HTTP->NATS bridge).
 * Resolves once the outbox has stored them; delivery and retries happen later, driven by alarms.
 * `shardKey` picks the outbox object (e.g. the room id) so one busy room does not queue behind another.
 */
export async function sendToMediaSide(_env: Env, _events: Envelope[], _shardKey: string): Promise<void> {
  throw new Error("edge outbox is not built yet (issue 4)");
}
