// Groups the events the bridge is about to send into batches (shared/batch.ts): one signed POST, one batch id,
// per-event verdicts back. Each event's own retry loop (bridge.ts) stays as it was: it asks `send` for one
// attempt and gets that event's verdict; whether the attempt travelled alone or with 99 others is this
// module's business. Retries of different events that fall due together are batched as well.
//
// A batch goes out when it is full (BRIDGE_BATCH_MAX events, or the next event would pass MAX_BATCH_BYTES) or
// when its first event has waited BRIDGE_BATCH_LINGER_MS: a burst fills batches at once, a trickle pays at most
// the linger. One event alone, or BRIDGE_BATCH_MAX = 1, uses the plain single-event form.

import { BATCH_CONTENT_TYPE, MAX_BATCH_BYTES, newBatchId } from "../../../../shared/batch.ts";
import { classifyBatch, type EventVerdict, singleVerdict } from "./classify-batch.ts";
import type { Deliver } from "./deliver.ts";

export interface BatcherOptions {
  max: number;
  lingerMs: number;
  deliver: Deliver;
  retryStatuses: Set<number>;
  /** a batch left (its size); for metrics */
  onBatch?: (size: number) => void;
  /** a batch was refused whole and its events are being sent one by one */
  onSplit?: (size: number, reason: string) => void;
}

export type Send = (eventId: string, json: string) => Promise<EventVerdict>;

interface Pending {
  id: string;
  json: string;
  resolve: (verdict: EventVerdict) => void;
}

// `{"batch":[` + `]}` and a comma per event.
const OVERHEAD = 12;

export function createBatcher(opts: BatcherOptions): Send {
  let queue: Pending[] = [];
  let queuedBytes = OVERHEAD;
  let timer: NodeJS.Timeout | undefined;

  async function sendAlone(p: Pending): Promise<void> {
    p.resolve(singleVerdict(await opts.deliver(p.id, p.json), opts.retryStatuses));
  }

  async function sendBatch(items: Pending[]): Promise<void> {
    opts.onBatch?.(items.length);
    if (items.length === 1) return sendAlone(items[0]!);
    // The events' own JSON as JetStream holds it, not re-serialized: the bytes the edge checks are the bytes
    // the media side published.
    const body = `{"batch":[${items.map((p) => p.json).join(",")}]}`;
    const outcome = await opts.deliver(newBatchId(), body, BATCH_CONTENT_TYPE);
    const verdict = classifyBatch(outcome, items.map((p) => p.id), opts.retryStatuses);
    if (verdict.split) {
      opts.onSplit?.(items.length, verdict.reason);
      await Promise.all(items.map(sendAlone));
      return;
    }
    items.forEach((p, i) => p.resolve(verdict.events[i]!));
  }

  function flush() {
    clearTimeout(timer);
    timer = undefined;
    const items = queue;
    queue = [];
    queuedBytes = OVERHEAD;
    if (items.length === 0) return;
    sendBatch(items).catch((error: Error) => {
      // deliver() resolves every failure as an outcome; this is a bug guard so no event waits forever.
      for (const p of items) p.resolve({ decision: { action: "retry", reason: `sending the batch failed: ${error.message}` }, cause: "error" });
    });
  }

  return (id, json) =>
    new Promise<EventVerdict>((resolve) => {
      const bytes = Buffer.byteLength(json) + 1;
      if (queue.length > 0 && queuedBytes + bytes > MAX_BATCH_BYTES) flush();
      queue.push({ id, json, resolve });
      queuedBytes += bytes;
      if (queue.length >= opts.max) flush();
      else timer ??= setTimeout(flush, opts.lingerMs);
    });
}
