// One delivery attempt of one event, or of a batch of events, to the HTTP->NATS bridge, and what its outcome
// means for the outbox.
//
// The bridge answers 2xx only once JetStream has stored the event (a repeat of an id it already stored is
// also 2xx), so a 2xx is the only signal that lets the outbox forget an event. Everything that might succeed
// later is retried: 5xx, 408, 425, 429, timeouts, refused connections, missing configuration, and 401/403 —
// a signature refused is a secret or clock mismatch between edge and bridge, not a fault of the event, and
// dead-lettering would empty every queue into the dead-letter table until an operator fixed it. Any other
// 4xx means the bridge will never take this event as it is, so it is dead-lettered instead of blocking.

import { BATCH_CONTENT_TYPE, batchResponseSchema, newBatchId, resultAction } from "../../../shared/batch.ts";
import { signWebhook } from "../../../shared/signing/webhooks.ts";

/** How much of a refusing response body is kept with a dead letter or an error, for the operator. */
const MAX_REASON_CHARS = 500;

export type DeliveryOutcome =
  | { kind: "delivered"; status: number }
  | { kind: "retry"; reason: string }
  | { kind: "dead"; reason: string };

/** Statuses in the 4xx range that are about timing, load or configuration, not the event: worth another try. */
const RETRYABLE_4XX = new Set([401, 403, 408, 425, 429]);

export function classifyStatus(status: number): "delivered" | "retry" | "dead" {
  if (status >= 200 && status < 300) return "delivered";
  if (status >= 400 && status < 500 && !RETRYABLE_4XX.has(status)) return "dead";
  // 1xx/3xx should not come from the bridge; treat them like 5xx rather than lose the event.
  return "retry";
}

/**
 * Runs `request` with a signal that aborts after `timeoutMs`; the timer is cleared as soon as the request settles,
 * so a finished delivery leaves no timer behind to keep its object busy.
 */
async function withTimeout<T>(timeoutMs: number, request: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  try {
    return await request(controller.signal);
  } finally {
    clearTimeout(timer);
  }
}

export interface DeliveryTarget {
  /** BRIDGE_URL */
  url: string | undefined;
  /** BRIDGE_INGRESS_SECRET: each one signs (several during a rotation, so either side can move first) */
  secrets: string[];
  /** OUTBOX_DELIVERY_TIMEOUT_MS: how long one POST may take before it counts as failed (and is retried) */
  timeoutMs: number;
}

/**
 * POSTs one serialized event, signed the Standard Webhooks way with a fresh timestamp (a retry hours later
 * must not arrive "stale"). `body` is the exact JSON that was stored, so every attempt sends the same bytes.
 */
export async function deliverEvent(target: DeliveryTarget, id: string, body: string, fetcher: typeof fetch = fetch): Promise<DeliveryOutcome> {
  const secrets = target.secrets;
  // Misconfiguration is retried, not dead-lettered: the events are fine and go out once it is fixed.
  if (!target.url) return { kind: "retry", reason: "BRIDGE_URL is not set" };
  if (secrets.length === 0) return { kind: "retry", reason: "BRIDGE_INGRESS_SECRET is not set" };
  let answer: { status: number; text: string };
  try {
    const headers = await signWebhook(secrets, id, body);
    answer = await withTimeout(target.timeoutMs, async (signal) => {
      const response = await fetcher(target.url!, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body, signal });
      // A 2xx says all there is to know; any other answer's body is kept as the reason.
      if (classifyStatus(response.status) === "delivered") {
        await response.body?.cancel();
        return { status: response.status, text: "" };
      }
      return { status: response.status, text: await response.text().catch(() => "") };
    });
  } catch (error) {
    return { kind: "retry", reason: `POST ${target.url} failed: ${error instanceof Error ? error.message : String(error)}` };
  }
  const kind = classifyStatus(answer.status);
  if (kind === "delivered") return { kind, status: answer.status };
  const text = answer.text.slice(0, MAX_REASON_CHARS);
  return { kind, reason: `bridge answered ${answer.status}${text ? `: ${text}` : ""}` };
}

/** What became of one event of a batch. */
export type EventDelivery = { kind: "delivered" } | { kind: "retry"; reason: string } | { kind: "dead"; reason: string };

export type BatchDeliveryOutcome =
  /** the bridge answered per event (same order as sent) */
  | { kind: "results"; results: EventDelivery[] }
  /** nothing is known to be stored: retry every event of the batch later */
  | { kind: "retry"; reason: string }
  /**
   * the bridge refused the batch AS A WHOLE with a permanent 4xx (e.g. a bridge that does not take batches
   * answers 400 to the body, or 413/415): says nothing about any one event, so the caller must not
   * dead-letter them all; it sends them one by one instead, where each gets its own verdict
   */
  | { kind: "refused"; reason: string };

/**
 * POSTs stored events as one batch (shared/batch.ts), signed once with a fresh batch id and timestamp.
 * `bodies` are the events' JSON exactly as stored; the batch body is built around them without re-serializing,
 * so every attempt sends each event's same bytes.
 */
export async function deliverBatch(
  target: DeliveryTarget,
  events: readonly { id: string; body: string }[],
  fetcher: typeof fetch = fetch,
): Promise<BatchDeliveryOutcome> {
  const secrets = target.secrets;
  if (!target.url) return { kind: "retry", reason: "BRIDGE_URL is not set" };
  if (secrets.length === 0) return { kind: "retry", reason: "BRIDGE_INGRESS_SECRET is not set" };
  const body = `{"batch":[${events.map((e) => e.body).join(",")}]}`;
  let response: { status: number; text: string };
  try {
    const headers = await signWebhook(secrets, newBatchId(), body);
    // The timeout covers the answer's body too: the per-event results are in it.
    response = await withTimeout(target.timeoutMs, async (signal) => {
      const res = await fetcher(target.url!, { method: "POST", headers: { ...headers, "content-type": BATCH_CONTENT_TYPE }, body, signal });
      return { status: res.status, text: await res.text().catch(() => "") };
    });
  } catch (error) {
    return { kind: "retry", reason: `POST ${target.url} failed: ${error instanceof Error ? error.message : String(error)}` };
  }
  const text = response.text;
  const status = classifyStatus(response.status);
  const said = `bridge answered ${response.status}${text ? `: ${text.slice(0, MAX_REASON_CHARS)}` : ""}`;
  if (status === "retry") return { kind: "retry", reason: said };
  if (status === "dead") return { kind: "refused", reason: said };
  // A 2xx without a body is the request-level contract (2xx = everything stored), as a plain webhook sink answers.
  if (text.trim() === "") return { kind: "results", results: events.map(() => ({ kind: "delivered" })) };
  return { kind: "results", results: resultsFor(events, text, response.status) ?? events.map(() => ({ kind: "retry", reason: `${said.slice(0, 200)} (not a results list for this batch)` })) };
}

/**
 * The per-event verdicts of a 2xx batch answer, or null if it is not a results list matching the batch
 * (then nothing can be told apart and everything is retried; the bridge deduplicates by event id).
 */
function resultsFor(events: readonly { id: string }[], text: string, status: number): EventDelivery[] | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const parsed = batchResponseSchema.safeParse(value);
  if (!parsed.success || parsed.data.results.length !== events.length) return null;
  const results = parsed.data.results;
  if (results.some((r, i) => r.id !== events[i]!.id)) return null;
  return results.map((r): EventDelivery => {
    const action = resultAction(r);
    if (action === "done") return { kind: "delivered" };
    const reason = `bridge answered ${status} with ${r.status}${r.code ? ` ${r.code}` : ""}${r.message ? `: ${r.message.slice(0, MAX_REASON_CHARS)}` : ""}`;
    return action === "dead-letter" ? { kind: "dead", reason } : { kind: "retry", reason };
  });
}
