// One Web Push request: the payload encrypted for one device (RFC 8291 aes128gcm), signed for the push service
// (RFC 8292 VAPID), sent with fetch, and the answer classified. Encryption and signing are
// @block65/webcrypto-web-push (Web Crypto only; read before adoption: see README "Web Push").
import { encryptNotification, vapidHeaders } from "@block65/webcrypto-web-push";
import { utf8 } from "../../../shared/encoding.ts";
import type { Urgency } from "./push-message.ts";

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
  /** 429, 5xx, a timeout or a network error: try again, not before `retryAfterMs` when the service said so */
  | { kind: "retry"; reason: string; retryAfterMs?: number }
  /** any other answer (400/401/403/413: our request is wrong for this service): not retried */
  | { kind: "failed"; reason: string };

/** A VAPID Authorization header per push-service origin, reused for an hour (the JWT itself lasts 12 h). */
const vapidCache = new Map<string, { header: string; until: number }>();
const VAPID_REUSE_MS = 3600_000;

async function authorization(endpoint: URL, vapid: VapidKeys, now: number): Promise<string> {
  const key = `${vapid.publicKey}|${endpoint.origin}`;
  const cached = vapidCache.get(key);
  if (cached && cached.until > now) return cached.header;
  // The library signs for https: endpoints only (RFC 8030 push resources are https). A local push service used in
  // development and tests speaks http:; its audience is then named with https:, which only a real service checks.
  const audience = endpoint.protocol === "https:" ? endpoint.href : `https://${endpoint.host}/`;
  const { headers } = await vapidHeaders({ endpoint: audience, expirationTime: null, keys: { p256dh: "", auth: "" } }, vapid);
  if (vapidCache.size > 1000) vapidCache.clear();
  vapidCache.set(key, { header: headers.authorization, until: now + VAPID_REUSE_MS });
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

/** Encrypts, signs and sends one push; never throws (a bad subscription key is `failed`). */
export async function sendPush(target: PushTarget, req: PushRequest, vapid: VapidKeys, timeoutMs: number): Promise<PushResult> {
  let body: Uint8Array;
  let auth: string;
  const endpoint = new URL(target.endpoint);
  try {
    auth = await authorization(endpoint, vapid, Date.now());
    // The payload is sent as the exact text given (the library would JSON-encode a non-string).
    body = await encryptNotification({ endpoint: target.endpoint, expirationTime: null, keys: { p256dh: target.p256dh, auth: target.auth } }, utf8(req.payload));
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
      signal: AbortSignal.timeout(timeoutMs),
    });
    // The body is not needed; drain it so the connection can be reused.
    await res.body?.cancel();
    return classifyPushStatus(res.status, res.headers.get("retry-after"));
  } catch (error) {
    const name = (error as Error).name;
    return { kind: "retry", reason: name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : `network error: ${(error as Error).message}` };
  }
}
