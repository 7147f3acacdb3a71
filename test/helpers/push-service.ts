// A local Web Push service for tests and the benchmark, on 127.0.0.1 and a free port. It is web-push-testing's
// model (the part that checks the VAPID JWT against the subscription's applicationServerKey, requires TTL and
// the content encoding, decrypts the RFC 8291 payload with http_ece, and answers 410 for an expired subscription)
// behind a small node:http server of our own, because the package's server binds every interface, keeps its
// state in a module global, and cannot be told to fail. On top it records each request's headers and can answer
// the next N requests of a subscription with a given status (503, 429, ...).
import { createServer, type IncomingMessage } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";

const require = createRequire(import.meta.url);
const { PushApiModel, SubscriptionExpiredError } = require("web-push-testing/src/PushApiModel.js") as {
  PushApiModel: new () => PushModel;
  SubscriptionExpiredError: new () => Error;
};

interface PushModel {
  notifyUrl: string;
  subscribe(opts: { userVisibleOnly: string; applicationServerKey: string }): Promise<{ endpoint: string; keys: { p256dh: string; auth: string }; clientHash: string }>;
  handleNotification(hash: string, headers: Record<string, string | undefined>, body: Buffer): Promise<void>;
  expireSubscription(hash: string): void;
  messages: Record<string, string[]>;
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
  /** decrypted pushes in arrival order */
  received: ReceivedPush[];
  /** every answered request: hash and status */
  answers: { hash: string; status: number; at: number }[];
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

export async function startPushService(): Promise<PushService> {
  const model = new PushApiModel();
  const failures = new Map<string, { count: number; status: number; retryAfterS?: number }>();
  const received: ReceivedPush[] = [];
  const answers: PushService["answers"] = [];
  const queues = new Map<string, Promise<void>>();
  const server = createServer(async (req, res) => {
    const body = await readBody(req);
    const m = req.url?.match(/^\/notify\/([^/?]+)$/);
    if (req.method !== "POST" || !m) {
      res.writeHead(404).end();
      return;
    }
    const hash = m[1]!;
    const answer = (status: number, headers: Record<string, string> = {}) => {
      answers.push({ hash, status, at: Date.now() });
      res.writeHead(status, headers).end();
    };
    const fail = failures.get(hash);
    if (fail && fail.count > 0) {
      fail.count--;
      answer(fail.status, fail.retryAfterS !== undefined ? { "retry-after": String(fail.retryAfterS) } : {});
      return;
    }
    const h = (name: string) => (req.headers[name] as string | undefined) ?? undefined;
    const headers = { ttl: h("ttl"), urgency: h("urgency"), topic: h("topic"), encoding: h("content-encoding"), authorization: h("authorization") };
    // The model appends each decrypted payload to a list per subscription: one request per subscription at a time,
    // so the payload read back is this request's.
    const turn = (queues.get(hash) ?? Promise.resolve()).then(async () => {
      const before = model.messages[hash]?.length ?? 0;
      await model.handleNotification(hash, { encoding: headers.encoding, authorization: headers.authorization, ttl: headers.ttl }, body);
      return model.messages[hash]![before]!;
    });
    queues.set(hash, turn.then(() => undefined, () => undefined));
    try {
      const payload = await turn;
      received.push({ hash, payload, headers, at: Date.now() });
      answer(201);
    } catch (error) {
      if (error instanceof SubscriptionExpiredError) answer(410);
      else {
        console.error(`push service: refused a push to ${hash}: ${(error as Error).message}`);
        answer(400);
      }
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  model.notifyUrl = `${url}/notify/`;
  return {
    url,
    async subscribe(applicationServerKey) {
      const sub = await model.subscribe({ userVisibleOnly: "true", applicationServerKey });
      return { endpoint: sub.endpoint, expirationTime: null, keys: sub.keys, hash: sub.clientHash };
    },
    expire: (hash) => model.expireSubscription(hash),
    failNext: (hash, count, status, retryAfterS) => failures.set(hash, { count, status, retryAfterS }),
    received,
    answers,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
