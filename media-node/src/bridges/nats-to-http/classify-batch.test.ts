import { describe, expect, it } from "vitest";
import { classifyBatch, singleVerdict } from "./classify-batch.ts";

const retryStatuses = new Set([401, 403, 408, 425, 429]);
const response = (status: number, body = "", retryAfter: string | null = null) => ({ kind: "response" as const, status, body, retryAfter });
const results = (...r: { id: string; status: string; code?: string; message?: string }[]) => JSON.stringify({ results: r });
const ids = ["e1", "e2", "e3", "e4"];

describe("what the NATS->HTTP bridge does with each event of a batch", () => {
  it("acts per event on a 200 with results: done -> ack, rejected -> dead-letter with code and message, failed -> retry", () => {
    const v = classifyBatch(
      response(200, results({ id: "e1", status: "applied" }, { id: "e2", status: "rejected", code: "unknown_event_type", message: "unknown event type 'x'" }, { id: "e3", status: "failed", code: "apply_failed" }, { id: "e4", status: "duplicate" })),
      ids,
      retryStatuses,
    );
    expect(v.split).toBe(false);
    if (v.split) return;
    expect(v.events.map((e) => e.decision.action)).toEqual(["ack", "dead-letter", "retry", "ack"]);
    expect(v.events[1]!.decision).toEqual({ action: "dead-letter", reason: "edge rejected it in a batch: unknown_event_type: unknown event type 'x'" });
    expect(v.events[2]).toMatchObject({ decision: { action: "retry", reason: "edge failed it in a batch: apply_failed" }, cause: "event_failed" });
  });

  it("matches results by id when they are out of order, and retries an event the answer left out (never acks on a guess)", () => {
    const v = classifyBatch(response(200, results({ id: "e3", status: "stored" }, { id: "e1", status: "ignored" })), ["e1", "e2", "e3"], retryStatuses);
    if (v.split) throw new Error("not a split");
    expect(v.events.map((e) => e.decision.action)).toEqual(["ack", "retry", "ack"]);
    expect(v.events[1]).toMatchObject({ cause: "no_result" });
  });

  it("retries every event on a whole-request failure: connection error, timeout, 5xx, 401/403/408/425/429, redirect", () => {
    for (const outcome of [{ kind: "error" as const, message: "no answer within 10000 ms" }, response(503, "", "2"), response(500), response(401), response(429), response(302)]) {
      const v = classifyBatch(outcome, ids, retryStatuses);
      if (v.split) throw new Error(`split on ${JSON.stringify(outcome)}`);
      expect(v.events.map((e) => e.decision.action)).toEqual(["retry", "retry", "retry", "retry"]);
    }
    const v = classifyBatch(response(503, "", "2"), ids, retryStatuses);
    expect(!v.split && v.events[0]).toMatchObject({ decision: { minDelayMs: 2000 }, cause: "503", status: 503 });
  });

  it("splits (sends each event alone) on a whole-batch permanent 4xx instead of dead-lettering good events", () => {
    for (const status of [400, 404, 413, 415, 422]) {
      const v = classifyBatch(response(status, '{"error":{"code":"malformed_batch"}}'), ids, retryStatuses);
      expect(v).toMatchObject({ split: true });
      if (v.split) expect(v.reason).toContain(`with ${status}: {"error":{"code":"malformed_batch"}}`);
    }
  });

  it("splits on a 2xx that carries no per-event results (an edge that answered something else)", () => {
    for (const body of ["", '{"applied":true}', "not json", '{"results":[]}', '{"results":[{"id":"e1","status":"maybe"}]}']) {
      expect(classifyBatch(response(200, body), ids, retryStatuses)).toMatchObject({ split: true });
    }
  });

  it("judges an event sent alone by its status, keeping the status for the dead-letter headers", () => {
    expect(singleVerdict(response(422, "no"), retryStatuses)).toMatchObject({ decision: { action: "dead-letter" }, status: 422 });
    expect(singleVerdict(response(200), retryStatuses)).toMatchObject({ decision: { action: "ack" }, status: 200 });
    expect(singleVerdict({ kind: "error", message: "ECONNREFUSED" }, retryStatuses)).toMatchObject({ decision: { action: "retry" }, cause: "error" });
  });
});
