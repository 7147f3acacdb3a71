// One signed POST of one event to the edge. Signed afresh on each attempt, so a retry long after the first try
// still carries a timestamp inside the edge's tolerance.

import { signWebhook } from "../../../../shared/signing/webhooks.ts";
import type { AttemptOutcome } from "./classify.ts";

export interface DeliverOptions {
  url: string;
  secrets: string[];
  timeoutMs: number;
}

export async function deliver(eventId: string, body: string, opts: DeliverOptions): Promise<AttemptOutcome> {
  try {
    const signed = await signWebhook(opts.secrets, eventId, body);
    const res = await fetch(opts.url, {
      method: "POST",
      headers: { "content-type": "application/json", ...signed },
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
    // Read (and so release) the body; keep a short excerpt for dead-letter reasons and logs.
    const text = await res.text().catch(() => "");
    return { kind: "response", status: res.status, body: text.slice(0, 2000), retryAfter: res.headers.get("retry-after") };
  } catch (error) {
    const e = error as Error & { cause?: { code?: string } };
    const message = e.name === "TimeoutError" ? `no answer within ${opts.timeoutMs} ms` : `${e.message}${e.cause?.code ? ` (${e.cause.code})` : ""}`;
    return { kind: "error", message };
  }
}
