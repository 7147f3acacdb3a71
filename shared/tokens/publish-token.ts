// Publish tokens: what a broadcaster puts in the RTMP URL (`rtmp://node/live/<streamId>?token=...`).
// Minted by the edge (which knows who may broadcast), checked by the media node at publish time.
//
// Format: base64url(JSON claims) "." base64url(HMAC-SHA256(secret, first part)). Small enough for an
// RTMP URL, no JWT library needed on the media node, and the same code runs in workerd and Node.

import { fromBase64Url, fromUtf8, importHmacKey, toBase64Url, utf8 } from "../encoding.ts";
import { checkStreamId } from "../names.ts";

export type PublishScope = "publish";

export interface PublishClaims {
  /** stream id (the RTMP stream key) this token may publish */
  sid: string;
  /** RTMP app the stream must be published under (default `live`) */
  app: string;
  scope: PublishScope;
  /** expiry, unix seconds */
  exp: number;
  /** user who will broadcast (for events and audit) */
  sub?: string;
  /** edge room whose viewers follow this stream; defaults to the stream id */
  room?: string;
  /** keep a VOD recording of the broadcast (default true) */
  rec?: boolean;
  /**
   * `low`: publish low-latency HLS (parts, announced to the edge) beside the classic playlists. Streams API keys
   * never carry it (the setting can change without a new key): the node learns it from the key check.
   */
  lat?: "normal" | "low";
  /**
   * Key version of a stream created through the edge's Streams API: rotating, disabling or deleting the stream
   * revokes every version below the current one. Absent on tokens minted outside the API (command line).
   */
  kv?: number;
}

const MAX_TOKEN_LENGTH = 2048;

export async function mintPublishToken(secret: string, claims: PublishClaims): Promise<string> {
  const name = checkStreamId(claims.sid);
  if (!name.ok) throw new Error(`mintPublishToken: ${name.reason}`);
  const body = toBase64Url(utf8(JSON.stringify(claims)));
  const key = await importHmacKey(utf8(secret));
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, utf8(body)));
  return `${body}.${toBase64Url(mac)}`;
}

/** `revoked`: the signature holds but the edge revoked the key (rotated, stream disabled or deleted). */
export type PublishTokenFailure = "missing" | "malformed" | "bad-signature" | "expired" | "wrong-scope" | "wrong-stream" | "wrong-app" | "revoked";

export type PublishTokenResult =
  | { ok: true; claims: PublishClaims }
  | { ok: false; reason: PublishTokenFailure; message: string };

export interface PublishTokenExpectation {
  streamId: string;
  app: string;
  nowS?: number;
  /** allowed clock skew, seconds */
  skewS?: number;
}

function fail(reason: PublishTokenFailure, message: string): PublishTokenResult {
  return { ok: false, reason, message };
}

export async function verifyPublishToken(
  secret: string,
  token: string | undefined | null,
  expect: PublishTokenExpectation,
): Promise<PublishTokenResult> {
  if (!token) return fail("missing", "no publish token");
  if (token.length > MAX_TOKEN_LENGTH) return fail("malformed", "publish token too long");
  const parts = token.split(".");
  if (parts.length !== 2) return fail("malformed", "publish token is not <claims>.<signature>");
  const [body, sig] = parts as [string, string];
  const mac = fromBase64Url(sig);
  const raw = fromBase64Url(body);
  if (!mac || !raw || mac.length !== 32) return fail("malformed", "publish token is not base64url");
  const key = await importHmacKey(utf8(secret));
  if (!(await crypto.subtle.verify("HMAC", key, mac, utf8(body)))) return fail("bad-signature", "publish token signature does not match");

  let claims: PublishClaims;
  try {
    claims = JSON.parse(fromUtf8(raw)) as PublishClaims;
  } catch {
    return fail("malformed", "publish token claims are not JSON");
  }
  if (typeof claims !== "object" || claims === null || typeof claims.exp !== "number" || typeof claims.sid !== "string") {
    return fail("malformed", "publish token claims lack sid/exp");
  }
  if (claims.kv !== undefined && !(Number.isSafeInteger(claims.kv) && claims.kv >= 0)) return fail("malformed", "publish token key version is not a whole number");
  if (claims.lat !== undefined && claims.lat !== "low" && claims.lat !== "normal") return fail("malformed", "publish token latency is neither 'low' nor 'normal'");
  const nowS = expect.nowS ?? Math.floor(Date.now() / 1000);
  if (claims.exp + (expect.skewS ?? 30) < nowS) return fail("expired", "publish token has expired");
  if (claims.scope !== "publish") return fail("wrong-scope", `publish token scope is '${String(claims.scope)}', not 'publish'`);
  if (claims.sid !== expect.streamId) return fail("wrong-stream", "publish token is for another stream");
  if ((claims.app ?? "live") !== expect.app) return fail("wrong-app", `publish token is for app '${claims.app}'`);
  return { ok: true, claims };
}
