import { describe, expect, it } from "vitest";
import { batchBody, newBatchId } from "../../../../shared/batch.ts";
import { type Envelope, makeEvent } from "../../../../shared/envelope.ts";
import { signWebhook } from "../../../../shared/signing/webhooks.ts";
import type { Stored } from "../../bus/publish.ts";
import { handleBatch } from "./batch-handler.ts";

const SECRET = "test-bridge-ingress-secret-0123456789";
const chat = (n: number) => makeEvent("chat.message", { roomId: "lobby", messageId: n, userId: "u1", text: `m${n}`, at: n }, { source: "edge", subject: "room/lobby" });

function deps(opts: { failIds?: Set<string>; failAll?: boolean } = {}) {
  const stored: Envelope[] = [];
  const seen = new Set<string>();
  return {
    stored,
    secrets: [SECRET],
    toleranceS: 300,
    async store(event: Envelope): Promise<Stored> {
      if (opts.failAll || opts.failIds?.has(event.id)) throw new Error("TIMEOUT");
      const duplicate = seen.has(event.id);
      seen.add(event.id);
      if (!duplicate) stored.push(event);
      return { stream: "EVENTS", seq: stored.length, duplicate };
    },
  };
}

async function signed(body: string, secret = SECRET) {
  return { headers: { "content-type": "application/vnd.pulsecast.batch+json", ...(await signWebhook(secret, newBatchId(), body)) }, body };
}

describe("HTTP->NATS batch handler", () => {
  it("stores every event in order and answers 200 with stored / duplicate per event", async () => {
    const d = deps();
    const events = [chat(1), chat(2), chat(3)];
    const first = await handleBatch(await signed(batchBody(events)), d);
    expect(first).toEqual({ status: 200, body: { results: events.map((e) => ({ id: e.id, status: "stored" })) } });
    const again = await handleBatch(await signed(batchBody([events[2]!, chat(4)])), d);
    expect((again.body.results as { status: string }[]).map((r) => r.status)).toEqual(["duplicate", "stored"]);
    expect(d.stored.map((e) => (e.data as { messageId: number }).messageId)).toEqual([1, 2, 3, 4]);
  });

  it("rejects bad items one by one (not an envelope, unknown type, a type the edge may not send) and stores the rest", async () => {
    const d = deps();
    const live = makeEvent("stream.live", { streamId: "s1", nodeId: "n1", playbackUrl: "https://cdn.example/s1.m3u8", renditions: [] }, { source: "edge", subject: "stream/s1" });
    const good = [chat(1), chat(2)];
    const body = JSON.stringify({ batch: [good[0], { ...chat(9), type: "chat.exploded" }, 42, live, good[1]] });
    const reply = await handleBatch(await signed(body), d);
    expect(reply.status).toBe(200);
    expect((reply.body.results as { id: string; status: string; code?: string }[]).map((r) => [r.status, r.code])).toEqual([
      ["stored", undefined],
      ["rejected", "unknown_event_type"],
      ["rejected", "malformed_event"],
      ["rejected", "type_not_accepted"],
      ["stored", undefined],
    ]);
    expect(d.stored.map((e) => e.id)).toEqual(good.map((e) => e.id));
  });

  it("answers `failed` for an event JetStream did not store, and 503 whole when it stored none", async () => {
    const events = [chat(1), chat(2)];
    const some = await handleBatch(await signed(batchBody(events)), deps({ failIds: new Set([events[1]!.id]) }));
    expect(some.status).toBe(200);
    expect(some.body.results).toEqual([{ id: events[0]!.id, status: "stored" }, { id: events[1]!.id, status: "failed", code: "not_stored", message: "JetStream did not store the event: TIMEOUT" }]);
    const none = await handleBatch(await signed(batchBody(events)), deps({ failAll: true }));
    expect(none).toMatchObject({ status: 503, headers: { "retry-after": "1" }, body: { error: "not-stored" } });
  });

  it("refuses a bad signature before reading the body, and a body that is not a batch, whole", async () => {
    const d = deps();
    const body = batchBody([chat(1)]);
    expect(await handleBatch(await signed(body, "another-secret-0123456789"), d)).toMatchObject({ status: 401, body: { error: "bad-signature" } });
    expect(await handleBatch(await signed('{"batch":[]}'), d)).toMatchObject({ status: 400, body: { error: "malformed-batch" } });
    expect(await handleBatch(await signed("[1,2]"), d)).toMatchObject({ status: 400, body: { error: "malformed-batch" } });
    expect(d.stored).toEqual([]);
  });
});
