// One delivery attempt of one event to the HTTP->NATS bridge, and what its outcome means for the outbox.
//
// The bridge answers 2xx only once JetStream has stored the event (a repeat of an id it already stored is
// also 2xx), so a 2xx is the only signal that lets the outbox forget an event. Everything that might succeed
// later is retried: 5xx, 408, 425, 429, timeouts, refused connections, missing configuration, and 401/403 —
// a signature refused is a secret or clock mismatch between edge and bridge, not a fault of the event, and
// dead-lettering would empty every queue into the dead-letter table until an operator fixed it. Any other
// 4xx means the bridge will never take this event as it is, so it is dead-lettered instead of blocking.

import { parseSecrets, signWebhook } from "../../../shared/signing/webhooks.ts";

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

export interface DeliveryTarget {
  /** BRIDGE_URL */
  url: string | undefined;
  /** BRIDGE_INGRESS_SECRET (one or several, comma/space separated) */
  secret: string | undefined;
  /** OUTBOX_DELIVERY_TIMEOUT_MS: how long one POST may take before it counts as failed (and is retried) */
  timeoutMs: number;
}

/**
 * POSTs one serialized event, signed the Standard Webhooks way with a fresh timestamp (a retry hours later
 * must not arrive "stale"). `body` is the exact JSON that was stored, so every attempt sends the same bytes.
 */
export async function deliverEvent(target: DeliveryTarget, id: string, body: string, fetcher: typeof fetch = fetch): Promise<DeliveryOutcome> {
  const secrets = parseSecrets(target.secret);
  // Misconfiguration is retried, not dead-lettered: the events are fine and go out once it is fixed.
  if (!target.url) return { kind: "retry", reason: "BRIDGE_URL is not set" };
  if (secrets.length === 0) return { kind: "retry", reason: "BRIDGE_INGRESS_SECRET is not set" };
  let response: Response;
  try {
    const headers = await signWebhook(secrets, id, body);
    response = await fetcher(target.url, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body,
      signal: AbortSignal.timeout(target.timeoutMs),
    });
  } catch (error) {
    return { kind: "retry", reason: `POST ${target.url} failed: ${error instanceof Error ? error.message : String(error)}` };
  }
  const kind = classifyStatus(response.status);
  if (kind === "delivered") {
    await response.body?.cancel();
    return { kind, status: response.status };
  }
  const text = (await response.text().catch(() => "")).slice(0, MAX_REASON_CHARS);
  return { kind, reason: `bridge answered ${response.status}${text ? `: ${text}` : ""}` };
}
