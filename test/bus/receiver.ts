// A small signed receiver standing in for the edge's ingress where a test must script the edge's answers
// (5xx, permanent 4xx, a request that never answers). It checks signatures exactly like the edge does
// (shared/signing) and counts each event id's deliveries, so tests can tell applied from duplicate.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { type Envelope, parseEventJson } from "../../shared/envelope.ts";
import { verifyWebhook } from "../../shared/signing/webhooks.ts";
import { TEST_SECRETS } from "../helpers/edge.ts";

/** What to answer for one delivery: a status, or "hang" (never answer until the receiver closes). */
export type Script = (event: Envelope, attempt: number) => number | "hang";

export interface Receiver {
  url: string;
  /** delivery count per event id (only signed, well-formed requests) */
  deliveries: Map<string, number>;
  /** ids answered 2xx, in the order they were first accepted */
  accepted: string[];
  /** requests refused for a bad signature */
  unsigned: number;
  /** resolves when `n` distinct events were accepted */
  waitForAccepted(n: number, timeoutMs?: number): Promise<void>;
  /** resolves when some request is hanging (a delivery in progress that a test can cut by killing the bridge) */
  waitForHanging(n?: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(port: number, script: Script = () => 200): Promise<Receiver> {
  const deliveries = new Map<string, number>();
  const accepted: string[] = [];
  const acceptedSet = new Set<string>();
  const hanging = new Set<ServerResponse>();
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of waiters) w();
  };
  const receiver: Receiver = {
    url: `http://127.0.0.1:${port}/hooks/events`,
    deliveries,
    accepted,
    unsigned: 0,
    waitForAccepted: (n, timeoutMs = 30_000) => waitUntil(() => acceptedSet.size >= n, `${n} events accepted (have ${acceptedSet.size})`, timeoutMs),
    waitForHanging: (n = 1, timeoutMs = 30_000) => waitUntil(() => hanging.size >= n, `${n} hanging deliveries`, timeoutMs),
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };

  function waitUntil(ok: () => boolean, what: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!ok()) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`receiver: timed out waiting for ${what}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const verified = await verifyWebhook([TEST_SECRETS.EDGE_INGRESS_SECRET], req.headers, body);
    if (!verified.ok) {
      receiver.unsigned++;
      return res.writeHead(401).end(verified.reason);
    }
    const parsed = parseEventJson(body);
    if (!parsed.ok) return res.writeHead(400).end(parsed.error);
    const event = parsed.event;
    const attempt = (deliveries.get(event.id) ?? 0) + 1;
    deliveries.set(event.id, attempt);
    const answer = script(event, attempt);
    if (answer === "hang") {
      hanging.add(res);
      res.on("close", () => hanging.delete(res));
      notify();
      return;
    }
    if (answer >= 200 && answer < 300 && !acceptedSet.has(event.id)) {
      acceptedSet.add(event.id);
      accepted.push(event.id);
    }
    res.writeHead(answer, { "content-type": "application/json" }).end(JSON.stringify({ status: answer, id: event.id }));
    notify();
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: Error) => res.writeHead(500).end(error.message));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return receiver;
}
