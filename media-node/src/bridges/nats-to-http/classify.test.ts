import { describe, expect, it } from "vitest";
import { classify, retryAfterMs } from "./classify.ts";

const retryStatuses = new Set([401, 403, 408, 425, 429]);
const response = (status: number, body = "", retryAfter: string | null = null) => ({ kind: "response" as const, status, body, retryAfter });

describe("what the NATS->HTTP bridge does after one attempt", () => {
  it("acks on any 2xx", () => {
    for (const s of [200, 201, 202, 204]) expect(classify(response(s), retryStatuses)).toEqual({ action: "ack" });
  });

  it("retries 5xx, timeouts and connection errors", () => {
    for (const s of [500, 502, 503, 504]) expect(classify(response(s), retryStatuses).action).toBe("retry");
    expect(classify({ kind: "error", message: "no answer within 10000 ms" }, retryStatuses)).toEqual({ action: "retry", reason: "no answer within 10000 ms" });
    expect(classify({ kind: "error", message: "fetch failed (ECONNREFUSED)" }, retryStatuses).action).toBe("retry");
  });

  it("retries 408 and 429 (and a secret mismatch, which is not the event's fault) instead of dead-lettering", () => {
    for (const s of [408, 429, 401, 403]) expect(classify(response(s), retryStatuses).action).toBe("retry");
  });

  it("dead-letters any other 4xx with the edge's reason", () => {
    const d = classify(response(422, '{"error":{"code":"unknown_event_type"}}'), retryStatuses);
    expect(d).toEqual({ action: "dead-letter", reason: 'edge refused it with 422: {"error":{"code":"unknown_event_type"}}' });
    expect(classify(response(400), retryStatuses).action).toBe("dead-letter");
    expect(classify(response(413), retryStatuses).action).toBe("dead-letter");
  });

  it("retries a redirect (a misconfigured URL) rather than losing the event", () => {
    expect(classify(response(302), retryStatuses).action).toBe("retry");
  });

  it("honours Retry-After as a minimum delay", () => {
    expect(classify(response(503, "", "3"), retryStatuses)).toEqual({ action: "retry", reason: "edge answered 503", minDelayMs: 3000 });
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(retryAfterMs("soon")).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
  });
});
