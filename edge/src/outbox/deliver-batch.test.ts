import { describe, expect, it } from "vitest";
import { BATCH_CONTENT_TYPE, MAX_BATCH_BYTES } from "../../../shared/batch.ts";
import { parseSecrets, verifyWebhook } from "../../../shared/signing/webhooks.ts";
import { deliverBatch } from "./deliver.ts";
import { takeBatch } from "./outbox.ts";

// deliverBatch with an injected fetch: what each kind of bridge answer means for each event.

const SECRET = "test-secret-for-deliver-batch-0123";
const target = { url: "http://bridge.test/events", secrets: [SECRET], timeoutMs: 1000 };
const events = ["evt_a", "evt_b", "evt_c"].map((id) => ({ id, body: JSON.stringify({ id, type: "chat.message" }) }));

function answering(status: number, body: unknown, seen?: Request[]): typeof fetch {
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    seen?.push(new Request(input, init));
    return new Response(typeof body === "string" ? body : JSON.stringify(body), { status });
  }) as typeof fetch;
}

describe("deliverBatch", () => {
  it("sends one signed batch, webhook-id a batch id, the stored bodies as they are", async () => {
    const seen: Request[] = [];
    const results = events.map((e) => ({ id: e.id, status: "stored" }));
    expect(await deliverBatch(target, events, answering(200, { results }, seen))).toEqual({ kind: "results", results: events.map(() => ({ kind: "delivered" })) });
    const request = seen[0]!;
    expect(request.headers.get("content-type")).toBe(BATCH_CONTENT_TYPE);
    expect(request.headers.get("webhook-id")).toMatch(/^bat_/);
    const body = await request.text();
    expect(body).toBe(`{"batch":[${events.map((e) => e.body).join(",")}]}`);
    expect((await verifyWebhook(parseSecrets(SECRET), request.headers, body)).ok).toBe(true);
  });

  it("maps per-event results: stored/duplicate/ignored done, rejected dead, failed retried, each with the bridge's reason", async () => {
    const results = [
      { id: "evt_a", status: "duplicate" },
      { id: "evt_b", status: "rejected", code: "unsupported_type", message: "not taken" },
      { id: "evt_c", status: "failed", code: "publish_failed", message: "JetStream timeout" },
    ];
    expect(await deliverBatch(target, events, answering(200, { results }))).toEqual({
      kind: "results",
      results: [
        { kind: "delivered" },
        { kind: "dead", reason: "bridge answered 200 with rejected unsupported_type: not taken" },
        { kind: "retry", reason: "bridge answered 200 with failed publish_failed: JetStream timeout" },
      ],
    });
  });

  it("a 2xx without a body counts for every event (the request-level contract of a plain webhook sink)", async () => {
    expect(await deliverBatch(target, events, answering(204, ""))).toEqual({ kind: "results", results: events.map(() => ({ kind: "delivered" })) });
  });

  it("a 2xx whose results do not match the batch retries every event", async () => {
    for (const body of [{ results: [{ id: "evt_a", status: "stored" }] }, { results: events.map((e) => ({ id: `${e.id}x`, status: "stored" })) }, "not json", { stored: true }]) {
      const outcome = await deliverBatch(target, events, answering(200, body));
      expect(outcome.kind).toBe("results");
      expect(outcome.kind === "results" && outcome.results.every((r) => r.kind === "retry")).toBe(true);
    }
  });

  it("retries the whole batch on 5xx, 401/403/408/429, a thrown fetch or missing configuration; a permanent 4xx refuses it as a whole", async () => {
    for (const status of [500, 503, 401, 403, 408, 429]) expect((await deliverBatch(target, events, answering(status, { error: {} }))).kind).toBe("retry");
    const thrown = (async () => {
      throw new TypeError("connect ECONNREFUSED");
    }) as typeof fetch;
    expect(await deliverBatch(target, events, thrown)).toMatchObject({ kind: "retry", reason: expect.stringContaining("ECONNREFUSED") });
    expect(await deliverBatch({ ...target, url: undefined }, events, answering(200, ""))).toEqual({ kind: "retry", reason: "BRIDGE_URL is not set" });
    expect(await deliverBatch({ ...target, secrets: [] }, events, answering(200, ""))).toEqual({ kind: "retry", reason: "BRIDGE_INGRESS_SECRET is not set" });
    for (const status of [400, 413, 415]) {
      expect(await deliverBatch(target, events, answering(status, { error: { code: "malformed_batch" } }))).toMatchObject({ kind: "refused", reason: expect.stringContaining(String(status)) });
    }
  });
});

describe("takeBatch", () => {
  it("takes up to `max` events from `start`, and stays under MAX_BATCH_BYTES counted in UTF-8", async () => {
    const rows = Array.from({ length: 10 }, (_, i) => ({ body: `"${i}"` }));
    expect(takeBatch(rows, 0, 4)).toEqual(rows.slice(0, 4));
    expect(takeBatch(rows, 8, 4)).toEqual(rows.slice(8));
    // 20 events of ~60,000 three-byte characters (180 KB each as UTF-8): 5 fit in 1 MiB, not 17.
    const wide = Array.from({ length: 20 }, () => ({ body: "€".repeat(60_000) }));
    const batch = takeBatch(wide, 0, 100);
    expect(batch.length).toBe(5);
    expect(batch.length * 180_001 + 12).toBeLessThanOrEqual(MAX_BATCH_BYTES);
    // an event alone is always taken, even if it were larger
    expect(takeBatch([{ body: "x".repeat(MAX_BATCH_BYTES) }], 0, 100)).toHaveLength(1);
  });
});
