// A small signed receiver standing in for the edge's ingress where a test must script the edge's answers
// (5xx, permanent 4xx, a request that never answers). It checks signatures exactly like the edge does
// (shared/signing) and counts each event id's deliveries, so tests can tell applied from duplicate.
//
// It takes both forms the edge takes: one event (application/json, webhook-id = event id) and a batch
// (shared/batch.ts). In a batch, the per-event script's status becomes that event's result the way the edge
// maps them: 2xx -> applied (duplicate if accepted before), other 4xx -> rejected, 5xx/408/429 -> failed;
// any "hang" hangs the whole request. `batchScript` can answer a batch as a whole instead (503, 400, ...).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { type EventResult, isBatchRequest, parseBatch } from "../../shared/batch.ts";
import { type Envelope, parseEventJson } from "../../shared/envelope.ts";
import { verifyWebhook } from "../../shared/signing/webhooks.ts";
import { TEST_SECRETS } from "../helpers/edge.ts";

/** What to answer for one delivery: a status, or "hang" (never answer until the receiver closes). */
export type Script = (event: Envelope, attempt: number) => number | "hang";
/** A whole-batch answer for the `n`th batch request (1-based), or undefined to answer per event. */
export type BatchScript = (events: Envelope[], n: number) => number | undefined;

export interface Receiver {
  url: string;
  /** delivery count per event id (only signed, well-formed requests) */
  deliveries: Map<string, number>;
  /** ids answered 2xx, in the order they were first accepted */
  accepted: string[];
  /** requests refused for a bad signature */
  unsigned: number;
  /** sizes of the batch requests received, in order */
  batches: number[];
  /** single-event requests received */
  singles: number;
  /** resolves when `n` distinct events were accepted */
  waitForAccepted(n: number, timeoutMs?: number): Promise<void>;
  /** resolves when `n` events are in hanging requests (deliveries in progress a test can cut by killing the bridge) */
  waitForHanging(n?: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(port: number, script: Script = () => 200, batchScript: BatchScript = () => undefined): Promise<Receiver> {
  const deliveries = new Map<string, number>();
  const accepted: string[] = [];
  const acceptedSet = new Set<string>();
  /** hanging responses and how many events each holds */
  const hanging = new Map<ServerResponse, number>();
  const hangingEvents = () => [...hanging.values()].reduce((a, b) => a + b, 0);
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of waiters) w();
  };
  const receiver: Receiver = {
    url: `http://127.0.0.1:${port}/hooks/events`,
    deliveries,
    accepted,
    unsigned: 0,
    batches: [],
    singles: 0,
    waitForAccepted: (n, timeoutMs = 30_000) => waitUntil(() => acceptedSet.size >= n, `${n} events accepted (have ${acceptedSet.size})`, timeoutMs),
    waitForHanging: (n = 1, timeoutMs = 30_000) => waitUntil(() => hangingEvents() >= n, `${n} events in hanging deliveries (have ${hangingEvents()})`, timeoutMs),
    async close() {
      for (const res of hanging.keys()) res.destroy();
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
    if (isBatchRequest(req.headers["content-type"])) return handleBatch(body, res);
    receiver.singles++;
    const parsed = parseEventJson(body);
    if (!parsed.ok) return res.writeHead(400).end(parsed.error);
    const event = parsed.event;
    if (verified.id !== event.id) return res.writeHead(400).end("webhook-id is not the event id");
    const answer = script(event, count(event.id));
    if (answer === "hang") return hang(res, 1);
    if (answer >= 200 && answer < 300) accept(event.id);
    res.writeHead(answer, { "content-type": "application/json" }).end(JSON.stringify({ status: answer, id: event.id }));
    notify();
  }

  function count(id: string): number {
    const attempt = (deliveries.get(id) ?? 0) + 1;
    deliveries.set(id, attempt);
    return attempt;
  }
  function accept(id: string): boolean {
    if (acceptedSet.has(id)) return false;
    acceptedSet.add(id);
    accepted.push(id);
    return true;
  }
  function hang(res: ServerResponse, events: number) {
    hanging.set(res, events);
    res.on("close", () => hanging.delete(res));
    notify();
  }

  function handleBatch(body: string, res: ServerResponse) {
    const parsed = parseBatch(body);
    if (!parsed.ok) return res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: parsed.code, message: parsed.error } }));
    const events = parsed.items.flatMap((item) => (item.ok ? [item.event] : []));
    receiver.batches.push(parsed.items.length);
    const whole = batchScript(events, receiver.batches.length);
    if (whole !== undefined) {
      // Refused or failed as a whole: nothing in it counts as delivered.
      res.writeHead(whole, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: `scripted_${whole}`, message: "scripted whole-batch answer" } }));
      return notify();
    }
    const answers = events.map((e) => ({ e, answer: script(e, count(e.id)) }));
    if (answers.some((a) => a.answer === "hang")) return hang(res, events.length);
    const byId = new Map(answers.map(({ e, answer }) => [e.id, answer as number]));
    const results = parsed.items.map((item): EventResult => {
      if (!item.ok) return item.result;
      const answer = byId.get(item.event.id)!;
      if (answer >= 200 && answer < 300) return { id: item.event.id, status: accept(item.event.id) ? "applied" : "duplicate" };
      const temporary = answer >= 500 || answer === 408 || answer === 429;
      return { id: item.event.id, status: temporary ? "failed" : "rejected", code: `http_${answer}`, message: `scripted ${answer}` };
    });
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ results }));
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
