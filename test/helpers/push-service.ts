// A local Web Push service for tests and the benchmark, on 127.0.0.1 and a free port. Subscriptions are made the way
// web-push-testing makes them (its PushApiModel: a P-256 key pair and a 16-byte auth secret per subscription, bound
// to the applicationServerKey it was asked with, and an expired flag that turns answers into 410). Each push is
// checked as a real push service checks it, then decrypted with http_ece (an implementation independent of ours):
// - `Authorization: vapid t=<JWT>, k=<key>` (RFC 8292 §3): k must be the subscription's applicationServerKey and
//   the JWT an ES256 signature by it, with `aud` the service's origin (the https: name of it, for this http:
//   service), an `exp` in the future and at most 24 h ahead, and a mailto: or https: `sub`;
// - `Content-Encoding: aes128gcm` and a numeric `TTL` (RFC 8030 §5.2);
// - the body must decrypt (RFC 8291; the GCM tag proves nobody changed it).
// A token once verified for a key is not verified again until its `exp` (same bytes, same key, same answer): the
// edge reuses its token for hours, as RFC 8292 allows, and a busy service would not pay an ECDSA verify per message
// either. Our own server rather than the package's, because that one binds every interface, keeps its state in a
// module global, re-imports the key and re-parses a PEM for every message, and cannot be told to fail. On top it
// records each request's headers, and can answer the next N requests of a subscription with a given status (503,
// 429, ...) or late.
import { createPublicKey, type KeyObject, timingSafeEqual, verify } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";

const require = createRequire(import.meta.url);
const { PushApiModel } = require("web-push-testing/src/PushApiModel.js") as { PushApiModel: new () => PushModel };
const ece = require("http_ece") as { decrypt(body: Buffer, params: { version: string; privateKey: unknown; authSecret: Buffer }): Buffer };

interface ModelSubscription {
  applicationServerKey: string;
  subscriptionDh: unknown;
  auth: string;
  isExpired: boolean;
}

interface PushModel {
  notifyUrl: string;
  subscriptions: Record<string, ModelSubscription>;
  subscribe(opts: { userVisibleOnly: string; applicationServerKey: string }): Promise<{ endpoint: string; keys: { p256dh: string; auth: string }; clientHash: string }>;
  expireSubscription(hash: string): void;
}

export interface ReceivedPush {
  hash: string;
  /** the decrypted payload text */
  payload: string;
  headers: { ttl?: string; urgency?: string; topic?: string; encoding?: string; authorization?: string };
  at: number;
}

export interface PushService {
  url: string;
  /** a browser-like PushSubscription JSON bound to `applicationServerKey` */
  subscribe(applicationServerKey: string): Promise<{ endpoint: string; expirationTime: null; keys: { p256dh: string; auth: string }; hash: string }>;
  /** from now on the subscription answers 410 */
  expire(hash: string): void;
  /** the next `count` requests to `hash` get `status` (and Retry-After when given) */
  failNext(hash: string, count: number, status: number, retryAfterS?: number): void;
  /** the next `count` requests to `hash` are taken and delivered at once, but answered (201) only `ms` later */
  answerLate(hash: string, count: number, ms: number): void;
  /** decrypted pushes in arrival order */
  received: ReceivedPush[];
  /** every answered request: hash and status (a late answer when it is written) */
  answers: { hash: string; status: number; at: number }[];
  /** requests refused as invalid (400), with the reason */
  refusals: { hash: string; reason: string }[];
  stop(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

const b64u = (text: string) => Buffer.from(text, "base64url");

class Refused extends Error {}

export async function startPushService(): Promise<PushService> {
  const model = new PushApiModel();
  const failures = new Map<string, { count: number; status: number; retryAfterS?: number }>();
  const late = new Map<string, { count: number; ms: number }>();
  const received: ReceivedPush[] = [];
  const answers: PushService["answers"] = [];
  const refusals: PushService["refusals"] = [];
  const keys = new Map<string, KeyObject>();
  /** verified tokens by `key|token`: when they expire (ms) */
  const verified = new Map<string, number>();
  let origin = "";

  const publicKey = (applicationServerKey: string): KeyObject => {
    let key = keys.get(applicationServerKey);
    if (!key) {
      const raw = b64u(applicationServerKey);
      if (raw.length !== 65 || raw[0] !== 4) throw new Refused("applicationServerKey is not an uncompressed P-256 point");
      key = createPublicKey({ key: { kty: "EC", crv: "P-256", x: raw.subarray(1, 33).toString("base64url"), y: raw.subarray(33).toString("base64url") }, format: "jwk" });
      keys.set(applicationServerKey, key);
    }
    return key;
  };

  /** RFC 8292 §2-3: the token and key of a `vapid` Authorization header, checked against the subscription. */
  const checkVapid = (authorization: string | undefined, sub: ModelSubscription, now: number) => {
    const m = /^vapid\s+t=([\w-]+\.[\w-]+\.[\w-]+)\s*,\s*k=([\w-]+)\s*$/.exec(authorization ?? "");
    if (!m) throw new Refused("Authorization is not `vapid t=<jwt>, k=<key>`");
    const [, token, k] = m as unknown as [string, string, string];
    const expected = b64u(sub.applicationServerKey);
    const given = b64u(k);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new Refused("k is not the key this subscription was made with");
    const cacheKey = `${k}|${token}`;
    const until = verified.get(cacheKey);
    if (until !== undefined && until > now) return;
    const [header, claims, signature] = token.split(".") as [string, string, string];
    const h = JSON.parse(b64u(header).toString("utf8")) as { alg?: string };
    if (h.alg !== "ES256") throw new Refused(`JWT alg ${h.alg}, not ES256`);
    const ok = verify("sha256", Buffer.from(`${header}.${claims}`), { key: publicKey(sub.applicationServerKey), dsaEncoding: "ieee-p1363" }, b64u(signature));
    if (!ok) throw new Refused("JWT signature does not verify with k");
    const c = JSON.parse(b64u(claims).toString("utf8")) as { aud?: unknown; exp?: unknown; sub?: unknown };
    if (c.aud !== origin) throw new Refused(`JWT aud ${String(c.aud)} is not ${origin}`);
    if (typeof c.exp !== "number" || c.exp * 1000 <= now) throw new Refused("JWT expired or without exp");
    if (c.exp * 1000 > now + 24 * 3600_000) throw new Refused("JWT exp more than 24 hours ahead");
    if (typeof c.sub !== "string" || !/^(mailto:|https:)/.test(c.sub)) throw new Refused("JWT sub is not a mailto: or https: contact");
    if (verified.size > 10_000) verified.clear();
    verified.set(cacheKey, c.exp * 1000);
  };

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req);
    const m = req.url?.match(/^\/notify\/([^/?]+)$/);
    if (req.method !== "POST" || !m) {
      res.writeHead(404).end();
      return;
    }
    const hash = m[1]!;
    const answer = (status: number, headers: Record<string, string> = {}) => {
      answers.push({ hash, status, at: Date.now() });
      // no body, and said so (as RFC 8030 services answer)
      res.writeHead(status, { "content-length": "0", ...headers }).end();
    };
    const fail = failures.get(hash);
    if (fail && fail.count > 0) {
      fail.count--;
      answer(fail.status, fail.retryAfterS !== undefined ? { "retry-after": String(fail.retryAfterS) } : {});
      return;
    }
    const sub = model.subscriptions[hash];
    if (!sub) return answer(404);
    if (sub.isExpired) return answer(410);
    const h = (name: string) => (req.headers[name] as string | undefined) ?? undefined;
    const headers = { ttl: h("ttl"), urgency: h("urgency"), topic: h("topic"), encoding: h("content-encoding"), authorization: h("authorization") };
    let payload: string;
    try {
      if (headers.encoding !== "aes128gcm") throw new Refused(`Content-Encoding ${headers.encoding}, not aes128gcm`);
      if (!/^\d+$/.test(headers.ttl ?? "")) throw new Refused(`TTL ${headers.ttl} is not a number of seconds`);
      checkVapid(headers.authorization, sub, Date.now());
      try {
        payload = ece.decrypt(body, { version: "aes128gcm", privateKey: sub.subscriptionDh, authSecret: b64u(sub.auth) }).toString("utf8");
      } catch (error) {
        throw new Refused(`payload does not decrypt: ${(error as Error).message}`);
      }
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      refusals.push({ hash, reason: error.message });
      console.error(`push service: refused a push to ${hash}: ${error.message}`);
      answer(400);
      return;
    }
    received.push({ hash, payload, headers, at: Date.now() });
    const slow = late.get(hash);
    if (slow && slow.count > 0) {
      slow.count--;
      // Taken and delivered; only the answer is late (a request the sender gave up on may be closed by then).
      setTimeout(() => (res.destroyed ? answers.push({ hash, status: 0, at: Date.now() }) : answer(201)), slow.ms);
      return;
    }
    answer(201);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  // The edge names an http: service by its https: origin (a real push service is always https:).
  origin = `https://127.0.0.1:${port}`;
  model.notifyUrl = `${url}/notify/`;
  return {
    url,
    async subscribe(applicationServerKey) {
      const sub = await model.subscribe({ userVisibleOnly: "true", applicationServerKey });
      return { endpoint: sub.endpoint, expirationTime: null, keys: sub.keys, hash: sub.clientHash };
    },
    expire: (hash) => model.expireSubscription(hash),
    failNext: (hash, count, status, retryAfterS) => failures.set(hash, { count, status, ...(retryAfterS !== undefined && { retryAfterS }) }),
    answerLate: (hash, count, ms) => late.set(hash, { count, ms }),
    received,
    answers,
    refusals,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
