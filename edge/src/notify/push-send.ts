// One Web Push request: the payload encrypted for one device (RFC 8291 aes128gcm, web-push-crypto.ts), signed for
// the push service (RFC 8292 VAPID), sent with fetch, and the answer classified.
// VAPID signing is @block65/webcrypto-web-push 2.0.0 (pinned by the lockfile), whose dist/lib was read line by line
// before use: vapid.js / jwt.js make an ES256 JWT {typ, alg} . {iat, aud = endpoint origin, exp = now + 12 h, sub},
// signature as Web Crypto's raw r||s (what JWS wants), header `vapid t=<jwt>, k=<public key>` (RFC 8292 §3); it
// refuses non-https endpoints. No network access, no eval, no global state; one dependency (uint8array-extras:
// base64 via atob/btoa). Only vapidHeaders is used: its encryptNotification did the same as web-push-crypto.ts at
// about twice the CPU per message (HKDF as HMAC chains in JavaScript, the 4 KiB body spread through an array).
import { vapidHeaders } from "@block65/webcrypto-web-push";
import { fromBase64Url, fromUtf8, utf8 } from "../../../shared/encoding.ts";
import type { Urgency } from "./push-message.ts";
import { encryptPushPayload } from "./web-push-crypto.ts";

export interface VapidKeys {
  subject: string;
  publicKey: string;
  privateKey: string;
}

export interface PushTarget {
  endpoint: string;
  p256dh: string;
  auth: string;
}

export interface PushRequest {
  payload: string;
  ttlS: number;
  urgency: Urgency;
  topic: string;
}

export type PushResult =
  | { kind: "ok"; status: number }
  /** 404/410: the subscription is gone for good; remove it, do not retry */
  | { kind: "gone"; status: number }
  /**
   * 429, 5xx, a cancelled request or a network error: try again, not before `retryAfterMs` when the service said so.
   * `unknown`: no answer came, so the service may have taken the message (a resend carries the same Topic and id).
   */
  | { kind: "retry"; reason: string; retryAfterMs?: number; unknown?: true }
  /** any other answer (400/401/403/413: our request is wrong for this service): not retried */
  | { kind: "failed"; reason: string };

/**
 * A VAPID Authorization header per push-service origin, reused for most of its JWT's life: signing costs a key
 * import and an ECDSA signature, and RFC 8292 lets one token serve every message to that service until it expires.
 * A fresh one is signed VAPID_RESIGN_BEFORE_MS ahead of `exp`, so a token never reaches a service about to lapse.
 * Only signed headers are kept (objects of one isolate share this map; none waits on another's promise).
 */
const vapidCache = new Map<string, { header: string; until: number }>();
const VAPID_RESIGN_BEFORE_MS = 3600_000;

/** `exp` (ms) of the JWT in a `vapid t=<jwt>, k=...` header. */
function vapidExpiry(header: string): number {
  const jwt = /t=([^,\s]+)/.exec(header)?.[1] ?? "";
  const claims = fromBase64Url(jwt.split(".")[1] ?? "");
  const exp = claims ? (JSON.parse(fromUtf8(claims)) as { exp?: unknown }).exp : undefined;
  if (typeof exp !== "number") throw new Error("VAPID token without exp");
  return exp * 1000;
}

/** The Authorization header for `endpoint`'s push service. */
export async function vapidAuthorization(endpoint: URL, vapid: VapidKeys, now = Date.now()): Promise<string> {
  const key = `${vapid.publicKey}|${vapid.subject}|${endpoint.origin}`;
  const cached = vapidCache.get(key);
  if (cached && cached.until > now) return cached.header;
  // The library signs for https: endpoints only (RFC 8030 push resources are https). A local push service used in
  // development and tests speaks http:; its audience is then named with https:, which only a real service checks.
  const audience = endpoint.protocol === "https:" ? endpoint.href : `https://${endpoint.host}/`;
  const { headers } = await vapidHeaders({ endpoint: audience, expirationTime: null, keys: { p256dh: "", auth: "" } }, vapid);
  if (vapidCache.size > 1000) vapidCache.clear();
  vapidCache.set(key, { header: headers.authorization, until: vapidExpiry(headers.authorization) - VAPID_RESIGN_BEFORE_MS });
  return headers.authorization;
}

/** Retry-After as ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/** What a push service's status code means for this subscription. */
export function classifyPushStatus(status: number, retryAfter: string | null, now = Date.now()): PushResult {
  if (status >= 200 && status < 300) return { kind: "ok", status };
  if (status === 404 || status === 410) return { kind: "gone", status };
  if (status === 429 || status === 408 || status >= 500) {
    const after = retryAfterMs(retryAfter, now);
    return { kind: "retry", reason: `push service answered ${status}`, ...(after !== undefined && { retryAfterMs: after }) };
  }
  return { kind: "failed", reason: `push service answered ${status}` };
}

/**
 * Encrypts, signs and sends one push. Settles when the request has really ended: the service's answer, a network
 * error, or the request cancelled after `abandonMs` without an answer (outcome unknown: `retry` with `unknown`).
 * Never rejects (a subscription whose keys are not a device's is `failed`).
 */
export async function sendPush(target: PushTarget, req: PushRequest, vapid: VapidKeys, abandonMs: number): Promise<PushResult> {
  let body: Uint8Array<ArrayBuffer>;
  let auth: string;
  const endpoint = new URL(target.endpoint);
  try {
    auth = await vapidAuthorization(endpoint, vapid);
    body = await encryptPushPayload(target.p256dh, target.auth, utf8(req.payload));
  } catch (error) {
    return { kind: "failed", reason: `could not encrypt for this subscription: ${(error as Error).message}` };
  }
  try {
    const res = await fetch(target.endpoint, {
      method: "POST",
      headers: {
        authorization: auth,
        ttl: String(req.ttlS),
        urgency: req.urgency,
        topic: req.topic,
        "content-encoding": "aes128gcm",
        "content-type": "application/octet-stream",
      },
      body,
      signal: AbortSignal.timeout(abandonMs),
    });
    // The body is not needed; one that is not known to be empty is cancelled so the connection can be reused
    // (push services answer 201 with none, and cancelling a stream costs more than the rest of the answer).
    if (res.headers.get("content-length") !== "0") await res.body?.cancel();
    return classifyPushStatus(res.status, res.headers.get("retry-after"));
  } catch (error) {
    const name = (error as Error).name;
    if (name === "TimeoutError") return { kind: "retry", reason: `no answer within ${abandonMs} ms; cancelled`, unknown: true };
    return { kind: "retry", reason: `network error: ${(error as Error).message}`, unknown: true };
  }
}
