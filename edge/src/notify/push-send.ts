// One Web Push request: the payload encrypted for one device (RFC 8291 aes128gcm), signed for the push service
// (RFC 8292 VAPID), sent with fetch, and the answer classified. Encryption and signing are
// @block65/webcrypto-web-push 2.0.0 (pinned by the lockfile), whose dist/lib was read line by line before use:
// - encrypt.js: a fresh ECDH P-256 key pair and a 16-byte crypto.getRandomValues salt per message; IKM =
//   HKDF(auth secret, ECDH secret, "WebPush: info\0" || ua_public || as_public, 32); CEK and nonce from
//   HKDF(salt, IKM) with "Content-Encoding: aes128gcm\0" (16) and "Content-Encoding: nonce\0" (12), as RFC 8291
//   §3.3-3.4; one record, delimiter 0x02 then zero padding up to 3993 bytes of plaintext, header salt || rs=4096 ||
//   idlen=65 || as_public (RFC 8188 §2.1): every body is exactly 4096 octets, so sizes leak nothing.
// - client-keys.js refuses a p256dh that is not a 65-byte uncompressed point and an auth secret that is not 16 bytes.
// - vapid.js / jwt.js: ES256 JWT {typ, alg} . {iat, aud = endpoint origin, exp = now + 12 h, sub}, signature as
//   Web Crypto's raw r||s (what JWS wants), header `vapid t=<jwt>, k=<public key>` (RFC 8292 §3); it refuses
//   non-https endpoints. It does not validate `urgency` or `topic`, and turns a TTL of 0 into 60: this module
//   sets those headers itself and uses only encryptNotification and vapidHeaders.
// - No network access, no eval, no global state; one dependency (uint8array-extras: base64 via atob/btoa).
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
