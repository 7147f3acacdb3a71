// A fake HTTP->NATS bridge for tests inside workerd: replaces global fetch, checks every request's Standard
// Webhooks signature the way the real bridge does, takes single events and batches (shared/batch.ts, answered
// with per-event results), and can be switched between up, down (503), refusing (a chosen status for chosen
// ids: in a batch a 4xx becomes that event's `rejected`, 408/425/429/5xx its `failed`), refusing batches as a
// whole, and unreachable (fetch throws); and it can hold requests unanswered until released, so a test can
// freeze an outbox's retries at a known count. Not imported by production code.
//
// Install it once per test file and never restore it: outbox alarms of earlier tests may still fire, and they
// must reach this fake, never the network. Tests therefore look only at their own event ids.

import { vi } from "vitest";
import { type EventResult, isBatchRequest, parseBatch } from "../../shared/batch.ts";
import { type Envelope, parseEventJson } from "../../shared/envelope.ts";
import { parseSecrets, verifyWebhook } from "../../shared/signing/webhooks.ts";

export type BridgeMode = "up" | "down" | "unreachable";

export interface FakeBridge {
  mode: BridgeMode;
  /** ids answered with this status (e.g. 422) while up; in a batch, that event's result (see above) */
  refuse: Map<string, number>;
  /** when set, every batch is refused as a whole with this status (an older bridge, a lower size limit) */
  refuseBatches: number | null;
  /** every request: its webhook-id and the event ids it carried (one for a single event) */
  requests: { batch: boolean; webhookId: string; ids: string[] }[];
  /** events the bridge stored (2xx), in arrival order */
  stored: Envelope[];
  /** every attempt, including failed ones */
  attempts: { id: string; mode: BridgeMode; status: number | EventResult["status"] | "error"; batch: boolean }[];
  /** waits until every one of `ids` was stored; returns the stored events with those ids, in arrival order */
  waitForStored(ids: string[]): Promise<Envelope[]>;
  /** waits until there were at least `n` attempts for events with these ids; returns those attempts */
  waitForAttempts(ids: string[], n: number): Promise<FakeBridge["attempts"]>;
  storedOf(ids: string[]): Envelope[];
  attemptsOf(ids: string[]): FakeBridge["attempts"];
  requestsOf(ids: string[]): FakeBridge["requests"];
  /** from now on, requests wait unanswered (and unrecorded) until release() */
  hold(): void;
  release(): void;
  /** back to up, nothing refused, nothing held (recorded history is kept; tests filter by their ids) */
  reset(): void;
}

export function installFakeBridge(url: string, secret: string): FakeBridge {
  // Polls from the test's own context. (Resolving a test's promise from inside the outbox object would run
  // the rest of the test in that object's I/O context, where the test's stubs cannot be used.)
  const until = async (what: string, cond: () => boolean, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`fake bridge: timed out waiting for ${what} (attempts: ${JSON.stringify(bridge.attempts)})`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const original = globalThis.fetch;
  // A flag polled by the held request in its own (the outbox object's) context: a promise resolved from the
  // test's context would continue the object's request in the wrong I/O context.
  let held = false;
  const bridge: FakeBridge = {
    mode: "up",
    refuse: new Map(),
    refuseBatches: null,
    requests: [],
    stored: [],
    attempts: [],
    storedOf: (ids) => bridge.stored.filter((e) => ids.includes(e.id)),
    attemptsOf: (ids) => bridge.attempts.filter((a) => ids.includes(a.id)),
    requestsOf: (ids) => bridge.requests.filter((r) => r.ids.some((id) => ids.includes(id))),
    async waitForStored(ids) {
      await until(`${ids.length} stored events`, () => ids.every((id) => bridge.stored.some((e) => e.id === id)));
      return bridge.storedOf(ids);
    },
    async waitForAttempts(ids, n) {
      await until(`${n} attempts`, () => bridge.attemptsOf(ids).length >= n);
      return bridge.attemptsOf(ids);
    },
    hold() {
      held = true;
    },
    release() {
      held = false;
    },
    reset() {
      bridge.mode = "up";
      bridge.refuse.clear();
      bridge.refuseBatches = null;
      bridge.release();
    },
  };
  const answer = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    if (request.url !== url) return original(input, init);
    while (held) await new Promise((r) => setTimeout(r, 10));
    const body = await request.text();
    const id = request.headers.get("webhook-id") ?? "";
    if (isBatchRequest(request.headers.get("content-type"))) return answerBatch(request, id, body);
    bridge.requests.push({ batch: false, webhookId: id, ids: [id] });
    const record = (status: number | "error") => bridge.attempts.push({ id, mode: bridge.mode, status, batch: false });
    if (bridge.mode === "unreachable") {
      record("error");
      throw new TypeError("connect ECONNREFUSED (fake bridge unreachable)");
    }
    if (bridge.mode === "down") {
      record(503);
      return Response.json({ error: { code: "nats_unavailable", message: "JetStream not reachable" } }, { status: 503 });
    }
    const verified = await verifyWebhook(parseSecrets(secret), request.headers, body);
    if (!verified.ok) {
      record(401);
      return Response.json({ error: { code: verified.reason, message: verified.message } }, { status: 401 });
    }
    const refused = bridge.refuse.get(id);
    if (refused) {
      record(refused);
      return Response.json({ error: { code: "refused", message: `test refuses ${id}` } }, { status: refused });
    }
    const parsed = parseEventJson(body);
    if (!parsed.ok || parsed.event.id !== id) {
      record(400);
      return Response.json({ error: { code: "malformed_event", message: parsed.ok ? "id mismatch" : parsed.error } }, { status: 400 });
    }
    bridge.stored.push(parsed.event);
    record(200);
    return Response.json({ stored: true });
  };
  const answerBatch = async (request: Request, batchId: string, body: string): Promise<Response> => {
    // The event ids as sent, for the records, before anything is checked (a refused batch is an attempt too).
    let ids: string[] = [];
    try {
      ids = ((JSON.parse(body) as { batch: { id?: unknown }[] }).batch ?? []).map((e) => String(e?.id));
    } catch {
      /* not JSON: no ids to record */
    }
    bridge.requests.push({ batch: true, webhookId: batchId, ids });
    const recordAll = (status: number | "error") => {
      for (const id of ids) bridge.attempts.push({ id, mode: bridge.mode, status, batch: true });
    };
    if (bridge.mode === "unreachable") {
      recordAll("error");
      throw new TypeError("connect ECONNREFUSED (fake bridge unreachable)");
    }
    if (bridge.mode === "down") {
      recordAll(503);
      return Response.json({ error: { code: "nats_unavailable", message: "JetStream not reachable" } }, { status: 503 });
    }
    const verified = await verifyWebhook(parseSecrets(secret), request.headers, body);
    if (!verified.ok) {
      recordAll(401);
      return Response.json({ error: { code: verified.reason, message: verified.message } }, { status: 401 });
    }
    if (bridge.refuseBatches !== null) {
      recordAll(bridge.refuseBatches);
      return Response.json({ error: { code: "malformed_batch", message: "test refuses batches" } }, { status: bridge.refuseBatches });
    }
    const parsed = parseBatch(body);
    if (!parsed.ok) {
      recordAll(400);
      return Response.json({ error: { code: parsed.code, message: parsed.error } }, { status: 400 });
    }
    const results = parsed.items.map((item): EventResult => {
      if (!item.ok) return item.result;
      const id = item.event.id;
      const refused = bridge.refuse.get(id);
      if (refused) {
        const temporary = refused >= 500 || [408, 425, 429].includes(refused);
        return { id, status: temporary ? "failed" : "rejected", code: "refused", message: `test refuses ${id} (${refused})` };
      }
      bridge.stored.push(item.event);
      return { id, status: "stored" };
    });
    results.forEach((r) => bridge.attempts.push({ id: r.id, mode: bridge.mode, status: r.status, batch: true }));
    return Response.json({ results });
  };
  vi.spyOn(globalThis, "fetch").mockImplementation(answer);
  return bridge;
}
