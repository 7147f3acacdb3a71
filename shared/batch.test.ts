import { describe, expect, it } from "vitest";
import { BATCH_CONTENT_TYPE, batchBody, batchResponseSchema, isBatchRequest, MAX_BATCH_EVENTS, parseBatch, resultAction } from "./batch.ts";
import { MAX_EVENT_BYTES, makeEvent } from "./envelope.ts";

const ev = (n: number) => makeEvent("chat.message", { roomId: "r1", messageId: n, userId: "u1", text: `m${n}`, at: n }, { source: "edge", subject: "room/r1" });

describe("event batches", () => {
  it("round-trips events through the batch body", () => {
    const events = [ev(1), ev(2), ev(3)];
    const parsed = parseBatch(batchBody(events));
    expect(parsed).toEqual({ ok: true, items: events.map((event) => ({ ok: true, event })) });
  });

  it("recognises the batch content type, with parameters and any case", () => {
    expect(isBatchRequest(BATCH_CONTENT_TYPE)).toBe(true);
    expect(isBatchRequest(`${BATCH_CONTENT_TYPE.toUpperCase()}; charset=utf-8`)).toBe(true);
    expect(isBatchRequest("application/json")).toBe(false);
    expect(isBatchRequest(null)).toBe(false);
  });

  it("refuses bodies that are not a batch, whole", () => {
    expect(parseBatch("{nope")).toMatchObject({ ok: false, code: "malformed_batch" });
    expect(parseBatch("[]")).toMatchObject({ ok: false, code: "malformed_batch" });
    expect(parseBatch('{"batch":[]}')).toMatchObject({ ok: false, code: "malformed_batch" });
    expect(parseBatch(JSON.stringify({ batch: Array.from({ length: MAX_BATCH_EVENTS + 1 }, (_, i) => ev(i + 1)) }))).toMatchObject({ ok: false, code: "malformed_batch" });
    expect(() => batchBody([])).toThrow();
  });

  it("rejects a bad item on its own and keeps the others", () => {
    const good = ev(1);
    const unknown = { ...ev(2), type: "chat.exploded" };
    const broken = { ...ev(3), data: { roomId: "../x" } };
    const huge = { ...ev(4), data: { ...ev(4).data, text: "x".repeat(MAX_EVENT_BYTES) } };
    const parsed = parseBatch(JSON.stringify({ batch: [good, unknown, broken, 42, huge] }));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.items[0]).toEqual({ ok: true, event: good });
    expect(parsed.items[1]).toMatchObject({ ok: false, result: { id: unknown.id, status: "rejected", code: "unknown_event_type" } });
    expect(parsed.items[2]).toMatchObject({ ok: false, result: { id: broken.id, status: "rejected", code: "malformed_event" } });
    expect(parsed.items[3]).toMatchObject({ ok: false, result: { id: "#3", status: "rejected" } });
    expect(parsed.items[4]).toMatchObject({ ok: false, result: { id: huge.id, status: "rejected", code: "too_large" } });
  });

  it("tells the sender what to do with each outcome", () => {
    expect(["applied", "stored", "duplicate", "ignored"].map((status) => resultAction({ status } as never))).toEqual(["done", "done", "done", "done"]);
    expect(resultAction({ status: "rejected" })).toBe("dead-letter");
    expect(resultAction({ status: "failed" })).toBe("retry");
    expect(batchResponseSchema.safeParse({ results: [{ id: "e", status: "applied" }] }).success).toBe(true);
    expect(batchResponseSchema.safeParse({ results: [{ id: "e", status: "maybe" }] }).success).toBe(false);
  });
});
