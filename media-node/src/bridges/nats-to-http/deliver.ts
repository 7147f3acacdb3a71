// One signed POST to the edge: one event (webhook-id = event id, application/json) or a batch (webhook-id =
// batch id, shared/batch.ts content type). Signed afresh on each attempt, so a retry long after the first try
// still carries a timestamp inside the edge's tolerance.
//
// node:http with a keep-alive agent rather than fetch: per request it costs a fraction of undici's fetch, and
// the bridge's throughput is bounded by per-request CPU on small hosts. One socket per in-flight slot.

import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { signWebhook } from "../../../../shared/signing/webhooks.ts";
import type { AttemptOutcome } from "./classify.ts";

export interface DeliverOptions {
  url: string;
  secrets: string[];
  timeoutMs: number;
  /** sockets kept open to the edge (= the bridge's concurrency) */
  maxSockets: number;
}

/** POSTs `body` signed with `webhookId` (the event id, or a batch id for a batch body). */
export type Deliver = (webhookId: string, body: string, contentType?: string) => Promise<AttemptOutcome>;

const MAX_EXCERPT = 2000;
/** A batch answer carries one result per event: keep all of it (the edge's answer is bounded by the batch). */
const MAX_BODY = 1024 * 1024;

export function createDeliverer(opts: DeliverOptions): Deliver & { close(): void } {
  const url = new URL(opts.url);
  const https = url.protocol === "https:";
  const agent = https ? new HttpsAgent({ keepAlive: true, maxSockets: opts.maxSockets }) : new HttpAgent({ keepAlive: true, maxSockets: opts.maxSockets });
  const send = https ? httpsRequest : httpRequest;

  const deliver = async (webhookId: string, body: string, contentType = "application/json"): Promise<AttemptOutcome> => {
    const signed = await signWebhook(opts.secrets, webhookId, body);
    const keep = contentType === "application/json" ? MAX_EXCERPT : MAX_BODY;
    return new Promise<AttemptOutcome>((resolve) => {
      const req = send(url, {
        method: "POST",
        agent,
        headers: { "content-type": contentType, "content-length": Buffer.byteLength(body), ...signed },
        signal: AbortSignal.timeout(opts.timeoutMs),
      });
      req.on("response", (res) => {
        let text = "";
        res.setEncoding("utf8");
        // Read the whole body (so the socket can be reused) but keep only what the caller can use.
        res.on("data", (chunk: string) => {
          if (text.length < keep) text += chunk;
        });
        res.on("end", () => {
          const retryAfter = res.headers["retry-after"];
          resolve({ kind: "response", status: res.statusCode ?? 0, body: text.slice(0, keep), retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : (retryAfter ?? null) });
        });
        res.on("error", (error) => resolve({ kind: "error", message: `response broken off: ${error.message}` }));
      });
      req.on("error", (error: Error & { code?: string }) => {
        const message = error.name === "AbortError" || error.name === "TimeoutError" ? `no answer within ${opts.timeoutMs} ms` : `${error.message}${error.code && !error.message.includes(error.code) ? ` (${error.code})` : ""}`;
        resolve({ kind: "error", message });
      });
      req.end(body);
    });
  };
  return Object.assign(deliver, { close: () => agent.destroy() });
}
