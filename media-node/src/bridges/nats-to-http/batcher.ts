// Groups the events the bridge is about to send into batches (shared/batch.ts): one signed POST, one batch id,
// per-event verdicts back. Each event's own retry loop (bridge.ts) stays as it was: it asks `send` for one
// attempt and gets that event's verdict; whether the attempt travelled alone or with 99 others is this
// module's business. Retries of different events that fall due together are batched as well.
//
// When a batch goes: at most BRIDGE_MAX_REQUESTS POSTs are in flight; while they are, new events queue up and
// leave together when one comes back (group commit), so batches grow with the load by themselves and a light
// load is not held back. With no POST in flight a batch goes at once; with some in flight and a slot free, a batch
// goes when it is full (BRIDGE_BATCH_MAX events, or the next event would pass MAX_BATCH_BYTES) or when its oldest
// event has waited BRIDGE_BATCH_LINGER_MS.
//
// What goes into a batch: queued events grouped by their `subject` (stream/<id>, user/<id>, ...), oldest subject
// first. The edge applies a batch with one call per target object, and the subject names what the event is
// about, so a batch of a few subjects costs it a few object calls instead of one per event. That needs a
// backlog to choose from, which is why BRIDGE_CONCURRENCY is well above BRIDGE_MAX_REQUESTS x BRIDGE_BATCH_MAX.
// A subject with events in a POST still out waits for it to come back: a subject's events reach the edge in
// queue order (until one of them needs a retry) and two requests never queue up at one object. One event alone, or BRIDGE_BATCH_MAX = 1, uses the plain single-event form (and
// then, as before batching existed, every event is its own request, bounded only by BRIDGE_CONCURRENCY).

import { BATCH_CONTENT_TYPE, MAX_BATCH_BYTES, newBatchId } from "../../../../shared/batch.ts";
import { classifyBatch, type EventVerdict, singleVerdict } from "./classify-batch.ts";
import type { Deliver } from "./deliver.ts";

export interface BatcherOptions {
  max: number;
  lingerMs: number;
  /** POSTs in flight at once (ignored when `max` is 1) */
  maxRequests: number;
  deliver: Deliver;
  retryStatuses: Set<number>;
  /** a batch left (its size); for metrics */
  onBatch?: (size: number) => void;
  /** a batch was refused whole and its events are being sent one by one */
  onSplit?: (size: number, reason: string) => void;
}

/** One attempt for one event; `key` groups events into batches (the event's subject). */
export type Send = (eventId: string, json: string, key?: string) => Promise<EventVerdict>;

interface Pending {
  id: string;
  json: string;
  key: string;
  bytes: number;
  at: number;
  resolve: (verdict: EventVerdict) => void;
}

// `{"batch":[` + `]}`; each event adds its bytes and a comma.
const OVERHEAD = 12;

export function createBatcher(opts: BatcherOptions): Send {
  let queue: Pending[] = [];
  let queuedBytes = OVERHEAD;
  let active = 0;
  /** subjects with events in a POST now, and how many such POSTs */
  const keysOut = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let soon: NodeJS.Immediate | undefined;
  const maxRequests = opts.max === 1 ? Number.POSITIVE_INFINITY : Math.max(1, opts.maxRequests);
  // One event per request (BRIDGE_BATCH_MAX=1) stays as it always was: every event posted at once, in parallel.
  const ordered = opts.max > 1;

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

  /** Up to `max` events and MAX_BATCH_BYTES, whole subjects first, oldest subject first. */
  function take(): Pending[] {
    const groups = new Map<string, Pending[]>();
    for (const p of queue) {
      if (ordered && keysOut.has(p.key)) continue;
      const g = groups.get(p.key);
      if (g) g.push(p);
      else groups.set(p.key, [p]);
    }
    const picked: Pending[] = [];
    let bytes = OVERHEAD;
    outer: for (const group of groups.values()) {
      for (const p of group) {
        if (picked.length >= opts.max || (picked.length > 0 && bytes + p.bytes > MAX_BATCH_BYTES)) break outer;
        picked.push(p);
        bytes += p.bytes;
      }
    }
    const taken = new Set(picked);
    queue = queue.filter((p) => !taken.has(p));
    queuedBytes -= bytes - OVERHEAD;
    return picked;
  }

  function markKeys(items: Pending[], by: 1 | -1) {
    for (const key of new Set(items.map((p) => p.key))) {
      const n = (keysOut.get(key) ?? 0) + by;
      if (n > 0) keysOut.set(key, n);
      else keysOut.delete(key);
    }
  }

  function pump() {
    clearTimeout(timer);
    timer = undefined;
    if (soon) clearImmediate(soon);
    soon = undefined;
    while (queue.length > 0 && active < maxRequests) {
      const full = queue.length >= opts.max || queuedBytes > MAX_BATCH_BYTES;
      const waited = Date.now() - queue[0]!.at;
      if (!full && waited < opts.lingerMs) {
        // Nothing in flight: nothing is gained by waiting, so the batch goes as soon as this turn of the event loop
        // is over (what arrives in the same turn goes with it). With POSTs out, waiting a little lets a partial
        // batch fill before it takes a slot.
        if (active === 0) soon = setImmediate(go);
        else timer = setTimeout(pump, opts.lingerMs - waited);
        return;
      }
      if (!sendNext()) return;
    }
  }

  /** The queue's next batch, now (a turn after the first event arrived with nothing in flight). */
  function go() {
    soon = undefined;
    if (queue.length > 0 && active < maxRequests) sendNext();
    pump();
  }

  /** Sends the next batch; false when every queued event's subject has a POST out (its answer pumps again). */
  function sendNext(): boolean {
    {
      const items = take();
      if (items.length === 0) return false;
      active++;
      markKeys(items, 1);
      sendBatch(items)
        .catch((error: Error) => {
          // deliver() resolves every failure as an outcome; this is a bug guard so no event waits forever.
          for (const p of items) p.resolve({ decision: { action: "retry", reason: `sending the batch failed: ${error.message}` }, cause: "error" });
        })
        .finally(() => {
          active--;
          markKeys(items, -1);
          pump();
        });
      return true;
    }
  }

  return (id, json, key = id) =>
    new Promise<EventVerdict>((resolve) => {
      const bytes = Buffer.byteLength(json) + 1;
      queue.push({ id, json, key, bytes, at: Date.now(), resolve });
      queuedBytes += bytes;
      pump();
    });
}
