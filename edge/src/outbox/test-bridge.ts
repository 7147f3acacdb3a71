// A fake HTTP->NATS bridge for tests inside workerd: replaces global fetch, checks every request's Standard
// Webhooks signature the way the real bridge does, and can be switched between up, down (503), refusing
// (a chosen status for chosen ids) and unreachable (fetch throws). Not imported by production code.

import { vi } from "vitest";
import { type Envelope, parseEventJson } from "../../../shared/envelope.ts";
import { parseSecrets, verifyWebhook } from "../../../shared/signing/webhooks.ts";

export type BridgeMode = "up" | "down" | "unreachable";

export interface FakeBridge {
  mode: BridgeMode;
  /** ids answered with this status (e.g. 422) while up */
  refuse: Map<string, number>;
  /** events the bridge stored (2xx), in arrival order */
  stored: Envelope[];
  /** every attempt, including failed ones */
  attempts: { id: string; mode: BridgeMode; status: number | "error" }[];
  /** resolves once `n` attempts have been made in total */
  attemptsReached(n: number): Promise<void>;
  /** resolves once `n` events have been stored in total */
  storedReached(n: number): Promise<void>;
  restore(): void;
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
  const bridge: FakeBridge = {
    mode: "up",
    refuse: new Map(),
    stored: [],
    attempts: [],
    attemptsReached: (n) => until(`${n} attempts`, () => bridge.attempts.length >= n),
    storedReached: (n) => until(`${n} stored events`, () => bridge.stored.length >= n),
    restore: () => spy.mockRestore(),
  };
  const answer = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    if (request.url !== url) return original(input, init);
    const body = await request.text();
    const id = request.headers.get("webhook-id") ?? "";
    const record = (status: number | "error") => bridge.attempts.push({ id, mode: bridge.mode, status });
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
  const spy = vi.spyOn(globalThis, "fetch").mockImplementation(answer);
  return bridge;
}
