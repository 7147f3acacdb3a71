// Media nodes' heartbeats (node.heartbeat, plain NATS, no stream keeps them) to the edge's Fleet object. The
// replicas share one queue group, so each heartbeat is forwarded once. Latest wins: heartbeats arriving within
// HEARTBEAT_LINGER_MS go out together, one per node, in one signed batch; a POST that fails is not retried (the
// node's next heartbeat, seconds later, carries newer news).

import type { NatsConnection, Subscription } from "nats";
import { BATCH_CONTENT_TYPE, newBatchId } from "../../../../shared/batch.ts";
import { parseEventJson } from "../../../../shared/envelope.ts";
import { fromUtf8 } from "../../../../shared/encoding.ts";
import { HEARTBEAT_SUBJECT } from "../../bus/subjects.ts";
import type { Deliver } from "./deliver.ts";

/** Heartbeats that arrive within this long of each other go out in one POST. */
export const HEARTBEAT_LINGER_MS = 20;

export interface HeartbeatForwarder {
  stop(): void;
  readonly forwarded: number;
}

export function forwardHeartbeats(nc: NatsConnection, opts: { queue: string; deliver: Deliver; log: (m: string) => void; onForwarded?: (n: number) => void }): HeartbeatForwarder {
  const sub: Subscription = nc.subscribe(HEARTBEAT_SUBJECT, { queue: opts.queue });
  const latest = new Map<string, { id: string; json: string }>();
  let timer: NodeJS.Timeout | undefined;
  let sending = false;
  let forwarded = 0;
  let failing = false;

  async function flush(): Promise<void> {
    timer = undefined;
    if (sending || latest.size === 0) return;
    sending = true;
    const items = [...latest.values()];
    latest.clear();
    try {
      const outcome = items.length === 1 ? await opts.deliver(items[0]!.id, items[0]!.json) : await opts.deliver(newBatchId(), `{"batch":[${items.map((i) => i.json).join(",")}]}`, BATCH_CONTENT_TYPE);
      const ok = outcome.kind === "response" && outcome.status >= 200 && outcome.status < 300;
      if (ok) {
        forwarded += items.length;
        opts.onForwarded?.(items.length);
        if (failing) opts.log("heartbeats reach the edge again");
        failing = false;
      } else if (!failing) {
        failing = true;
        opts.log(`heartbeats not taken by the edge (not retried; the next ones will be): ${outcome.kind === "response" ? `HTTP ${outcome.status} ${outcome.body.slice(0, 200)}` : outcome.message}`);
      }
    } finally {
      sending = false;
      if (latest.size > 0) timer ??= setTimeout(() => void flush(), HEARTBEAT_LINGER_MS);
    }
  }

  void (async () => {
    for await (const m of sub) {
      const parsed = parseEventJson(fromUtf8(m.data));
      if (!parsed.ok || parsed.event.type !== "node.heartbeat") {
        opts.log(`not a heartbeat on ${HEARTBEAT_SUBJECT}, dropped: ${parsed.ok ? parsed.event.type : parsed.error}`);
        continue;
      }
      latest.set(parsed.event.data.nodeId, { id: parsed.event.id, json: fromUtf8(m.data) });
      timer ??= setTimeout(() => void flush(), HEARTBEAT_LINGER_MS);
    }
  })();

  return {
    stop() {
      clearTimeout(timer);
      sub.unsubscribe();
    },
    get forwarded() {
      return forwarded;
    },
  };
}
