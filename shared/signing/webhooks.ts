// Standard Webhooks signing (https://www.standardwebhooks.com/), on Web Crypto so the Worker and Node
// share one implementation. Every internal HTTP hop (NATS->edge, edge->NATS) is signed with it.
//
//   webhook-id:        the event id (also the dedup key)
//   webhook-timestamp: unix seconds
//   webhook-signature: space-separated `v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>`
//
// Secrets are `whsec_<base64>` (the standard form) or any other string, taken as raw UTF-8 bytes.
// Several secrets may be configured on the verifying side, and several signatures sent, so secrets rotate
// without downtime. Comparison goes through crypto.subtle.verify, which is constant-time.

import { fromBase64, importHmacKey, toBase64, utf8 } from "../encoding.ts";

export const WEBHOOK_ID = "webhook-id";
export const WEBHOOK_TIMESTAMP = "webhook-timestamp";
export const WEBHOOK_SIGNATURE = "webhook-signature";

/** Default tolerance for webhook-timestamp vs. the receiver's clock, both directions. */
export const DEFAULT_TOLERANCE_S = 5 * 60;
/** Signature headers longer than this are refused before any crypto. */
const MAX_SIGNATURE_HEADER = 4096;

const keyCache = new Map<string, Promise<CryptoKey>>();

function secretBytes(secret: string): Uint8Array<ArrayBuffer> {
  if (secret.startsWith("whsec_")) {
    const raw = fromBase64(secret.slice("whsec_".length));
    if (raw && raw.length > 0) return raw;
  }
  return utf8(secret);
}

function keyFor(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret);
  if (!key) {
    key = importHmacKey(secretBytes(secret));
    keyCache.set(secret, key);
  }
  return key;
}

/** Splits a comma/space separated secret list (env vars hold the current and the previous secret). */
export function parseSecrets(value: string | undefined): string[] {
  return (value ?? "").split(/[\s,]+/).filter((s) => s.length > 0);
}

// A type alias (not an interface) so it is assignable to plain header records and `fetch` init headers.
export type SignedHeaders = {
  [WEBHOOK_ID]: string;
  [WEBHOOK_TIMESTAMP]: string;
  [WEBHOOK_SIGNATURE]: string;
};

/** Signs `body` with every given secret (the receiver accepts any one that matches). */
export async function signWebhook(
  secrets: string | string[],
  id: string,
  body: string,
  timestampS: number = Math.floor(Date.now() / 1000),
): Promise<SignedHeaders> {
  const list = Array.isArray(secrets) ? secrets : [secrets];
  if (list.length === 0) throw new Error("signWebhook: no secret configured");
  const payload = utf8(`${id}.${timestampS}.${body}`);
  const signatures: string[] = [];
  for (const secret of list) {
    const mac = await crypto.subtle.sign("HMAC", await keyFor(secret), payload);
    signatures.push(`v1,${toBase64(new Uint8Array(mac))}`);
  }
  return { [WEBHOOK_ID]: id, [WEBHOOK_TIMESTAMP]: String(timestampS), [WEBHOOK_SIGNATURE]: signatures.join(" ") };
}

export type VerifyFailure =
  | "missing-headers"
  | "bad-timestamp"
  | "stale-timestamp"
  | "future-timestamp"
  | "bad-signature"
  | "no-secret";

export type VerifyResult = { ok: true; id: string; timestampS: number } | { ok: false; reason: VerifyFailure; message: string };

export interface VerifyOptions {
  toleranceS?: number;
  nowS?: number;
}

type HeaderSource = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  const value = (headers as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Verifies a signed request. The body must be the exact bytes received, as text. */
export async function verifyWebhook(
  secrets: string | string[],
  headers: HeaderSource,
  body: string,
  opts: VerifyOptions = {},
): Promise<VerifyResult> {
  const list = Array.isArray(secrets) ? secrets : [secrets];
  if (list.length === 0) return { ok: false, reason: "no-secret", message: "receiver has no webhook secret configured" };
  const id = header(headers, WEBHOOK_ID);
  const ts = header(headers, WEBHOOK_TIMESTAMP);
  const sig = header(headers, WEBHOOK_SIGNATURE);
  if (!id || !ts || !sig) {
    return { ok: false, reason: "missing-headers", message: `${WEBHOOK_ID}, ${WEBHOOK_TIMESTAMP} and ${WEBHOOK_SIGNATURE} are required` };
  }
  if (!/^\d{1,12}$/.test(ts)) return { ok: false, reason: "bad-timestamp", message: `${WEBHOOK_TIMESTAMP} is not unix seconds` };
  const timestampS = Number(ts);
  const nowS = opts.nowS ?? Math.floor(Date.now() / 1000);
  const tolerance = opts.toleranceS ?? DEFAULT_TOLERANCE_S;
  if (timestampS < nowS - tolerance) return { ok: false, reason: "stale-timestamp", message: "timestamp is too old" };
  if (timestampS > nowS + tolerance) return { ok: false, reason: "future-timestamp", message: "timestamp is in the future" };
  if (sig.length > MAX_SIGNATURE_HEADER) return { ok: false, reason: "bad-signature", message: "signature header too long" };

  const payload = utf8(`${id}.${ts}.${body}`);
  for (const part of sig.split(" ")) {
    const [version, value] = part.split(",", 2);
    if (version !== "v1" || !value) continue;
    const mac = fromBase64(value);
    if (!mac || mac.length !== 32) continue;
    for (const secret of list) {
      if (await crypto.subtle.verify("HMAC", await keyFor(secret), mac, payload)) return { ok: true, id, timestampS };
    }
  }
  return { ok: false, reason: "bad-signature", message: "no signature matches" };
}
