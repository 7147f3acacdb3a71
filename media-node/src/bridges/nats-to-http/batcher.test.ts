import { describe, expect, it } from "vitest";
import { BATCH_CONTENT_TYPE, MAX_BATCH_BYTES, parseBatch } from "../../../../shared/batch.ts";
import { makeEvent, MAX_EVENT_BYTES } from "../../../../shared/envelope.ts";
import { createBatcher } from "./batcher.ts";
import type { AttemptOutcome } from "./classify.ts";
import type { Deliver } from "./deliver.ts";

const retryStatuses = new Set([401, 403, 408, 425, 429]);
const ev = (n: number) => makeEvent("media.progress", { mediaId: `med_${n}`, ownerId: "u1", stage: "transcode", percent: n % 101 }, { source: "media-node/t", subject: `media/med_${n}` });

interface Sent {
  webhookId: string;
  body: string;
  contentType: string;
}

/** A deliverer that records requests and answers batches per event with `perEvent`, singles with `single`. */
function recorder(opts: { batch?: (ids: string[]) => AttemptOutcome; single?: (id: string) => AttemptOutcome } = {}) {
  const sent: Sent[] = [];
  const deliver: Deliver = async (webhookId, body, contentType = "application/json") => {
    sent.push({ webhookId, body, contentType });
    if (contentType === BATCH_CONTENT_TYPE) {
      const parsed = parseBatch(body);
      if (!parsed.ok) throw new Error(parsed.error);
      const ids = parsed.items.map((i) => (i.ok ? i.event.id : i.result.id));
      return opts.batch?.(ids) ?? { kind: "response", status: 200, body: JSON.stringify({ results: ids.map((id) => ({ id, status: "applied" })) }) };
    }
    return opts.single?.(webhookId) ?? { kind: "response", status: 200, body: "" };
  };
  return { sent, deliver };
}

describe("the bridge's batcher", () => {
  it("sends events due together as one signed batch (batch id as webhook-id, events' own JSON) and gives each its verdict", async () => {
    const { sent, deliver } = recorder();
    // Every send below happens in one synchronous loop; a linger far longer than any pause a loaded machine can
    // put inside that loop (GC, a CPU hog) keeps them one batch, which is what this test is about.
    const send = createBatcher({ max: 100, lingerMs: 1000, maxRequests: 4, deliver, retryStatuses });
    const events = Array.from({ length: 30 }, (_, i) => ev(i));
    const verdicts = await Promise.all(events.map((e) => send(e.id, JSON.stringify(e))));
    expect(sent).toHaveLength(1);
    expect(sent[0]!.contentType).toBe(BATCH_CONTENT_TYPE);
    expect(sent[0]!.webhookId).toMatch(/^bat_/);
    expect(JSON.parse(sent[0]!.body)).toEqual({ batch: events });
    expect(verdicts.every((v) => v.decision.action === "ack")).toBe(true);
  });

  it("never puts more than BRIDGE_BATCH_MAX events in one request", async () => {
    const { sent, deliver } = recorder();
    const sizes: number[] = [];
    const send = createBatcher({ max: 10, lingerMs: 1000, maxRequests: 4, deliver, retryStatuses, onBatch: (n) => sizes.push(n) });
    await Promise.all(Array.from({ length: 25 }, (_, i) => ev(i)).map((e) => send(e.id, JSON.stringify(e))));
    expect(sizes).toEqual([10, 10, 5]);
    expect(sent).toHaveLength(3);
  });

  it("keeps a batch under MAX_BATCH_BYTES by sending what it has before the next event would pass it", async () => {
    const { sent, deliver } = recorder();
    const send = createBatcher({ max: 100, lingerMs: 5, maxRequests: 4, deliver, retryStatuses });
    // Events near the per-event limit (a field the schema does not know pads them; the batcher only counts bytes).
    const big = Array.from({ length: 40 }, (_, i) => ev(i));
    await Promise.all(big.map((e) => send(e.id, JSON.stringify({ ...e, pad: "x".repeat(MAX_EVENT_BYTES - 400) }))));
    expect(sent.length).toBeGreaterThan(1);
    for (const s of sent) expect(Buffer.byteLength(s.body)).toBeLessThanOrEqual(MAX_BATCH_BYTES);
    expect(sent.reduce((n, s) => n + (s.contentType === BATCH_CONTENT_TYPE ? (JSON.parse(s.body) as { batch: unknown[] }).batch.length : 1), 0)).toBe(40);
  });

  it("uses today's single-event form with BRIDGE_BATCH_MAX=1, and for an event that is alone", async () => {
    const { sent, deliver } = recorder();
    const one = createBatcher({ max: 1, lingerMs: 5, maxRequests: 4, deliver, retryStatuses });
    const events = [ev(1), ev(2)];
    await Promise.all(events.map((e) => one(e.id, JSON.stringify(e))));
    const alone = createBatcher({ max: 100, lingerMs: 1, maxRequests: 4, deliver, retryStatuses });
    const e3 = ev(3);
    await alone(e3.id, JSON.stringify(e3));
    expect(sent.map((s) => [s.webhookId, s.contentType, s.body])).toEqual([...events, e3].map((e) => [e.id, "application/json", JSON.stringify(e)]));
  });

  it("on a whole-batch permanent 4xx sends each event alone, so only the bad one is dead-lettered", async () => {
    const events = [ev(1), ev(2), ev(3)];
    const poison = events[1]!.id;
    const { sent, deliver } = recorder({
      batch: () => ({ kind: "response", status: 400, body: '{"error":{"code":"malformed_batch"}}' }),
      single: (id) => ({ kind: "response", status: id === poison ? 422 : 200, body: id === poison ? "unknown type" : "" }),
    });
    const splits: number[] = [];
    const send = createBatcher({ max: 100, lingerMs: 5, maxRequests: 4, deliver, retryStatuses, onSplit: (n) => splits.push(n) });
    const verdicts = await Promise.all(events.map((e) => send(e.id, JSON.stringify(e))));
    expect(splits).toEqual([3]);
    expect(sent.map((s) => s.contentType)).toEqual([BATCH_CONTENT_TYPE, "application/json", "application/json", "application/json"]);
    expect(verdicts.map((v) => v.decision.action)).toEqual(["ack", "dead-letter", "ack"]);
    expect(verdicts[1]).toMatchObject({ status: 422 });
  });

  it("retries every event of a batch the edge could not take (503)", async () => {
    const { deliver } = recorder({ batch: () => ({ kind: "response", status: 503, body: "" }) });
    const send = createBatcher({ max: 100, lingerMs: 5, maxRequests: 4, deliver, retryStatuses });
    const verdicts = await Promise.all([ev(1), ev(2)].map((e) => send(e.id, JSON.stringify(e))));
    expect(verdicts.map((v) => [v.decision.action, v.cause])).toEqual([["retry", "503"], ["retry", "503"]]);
  });

  it("groups a batch by subject (fewer objects for the edge to call), keeping each subject's order", async () => {
    const batches: number[][] = [];
    const events = Array.from({ length: 13 }, (_, i) => ev(i));
    let release!: () => void;
    const busy = new Promise<void>((r) => (release = r));
    const deliver: Deliver = async (id, body, contentType) => {
      if (contentType !== BATCH_CONTENT_TYPE) {
        await busy; // the first event holds the only request slot while the others queue up
        return { kind: "response", status: 200, body: "" };
      }
      const ids = (JSON.parse(body) as { batch: { id: string }[] }).batch.map((e) => e.id);
      batches.push(ids.map((x) => events.findIndex((e) => e.id === x)));
      return { kind: "response", status: 200, body: JSON.stringify({ results: ids.map((x) => ({ id: x, status: "applied" })) }) };
    };
    const send = createBatcher({ max: 6, lingerMs: 0, maxRequests: 1, deliver, retryStatuses });
    const first = send(events[0]!.id, JSON.stringify(events[0]), "first");
    // 12 more over 3 subjects, interleaved a b c a b c ...
    const rest = events.slice(1).map((e, i) => send(e.id, JSON.stringify(e), `subject-${"abc"[i % 3]}`));
    release();
    await Promise.all([first, ...rest]);
    // Whole subjects first, oldest subject first: a's four, then b's first two; then c (its oldest event is
    // older than b's next), then the rest of b.
    expect(batches).toEqual([[1, 4, 7, 10, 2, 5], [3, 6, 9, 12, 8, 11]]);
  });

  it("keeps at most BRIDGE_MAX_REQUESTS posts in flight; what arrives meanwhile leaves together when one returns", async () => {
    const sent: number[] = [];
    const answers: (() => void)[] = [];
    const deliver: Deliver = (_id, body, contentType) =>
      new Promise((resolve) => {
        const ids = contentType === BATCH_CONTENT_TYPE ? (JSON.parse(body) as { batch: { id: string }[] }).batch.map((e) => e.id) : [JSON.parse(body).id as string];
        sent.push(ids.length);
        answers.push(() => resolve({ kind: "response", status: 200, body: contentType === BATCH_CONTENT_TYPE ? JSON.stringify({ results: ids.map((id) => ({ id, status: "applied" })) }) : "" }));
      });
    const send = createBatcher({ max: 100, lingerMs: 0, maxRequests: 1, deliver, retryStatuses });
    const first = ev(0);
    const firstDone = send(first.id, JSON.stringify(first));
    expect(sent).toEqual([1]); // alone and at once: nothing else was waiting
    const rest = Array.from({ length: 20 }, (_, i) => ev(i + 1));
    const restDone = Promise.all(rest.map((e) => send(e.id, JSON.stringify(e))));
    expect(sent).toEqual([1]); // the one slot is busy: they queue
    answers.shift()!();
    await firstDone;
    await new Promise((r) => setImmediate(r)); // the slot is freed just after the verdict is handed out
    expect(sent).toEqual([1, 20]);
    answers.shift()!();
    expect((await restDone).every((v) => v.decision.action === "ack")).toBe(true);
  });

  it("holds a subject's next events while a POST with that subject is out (order per subject), others go meanwhile", async () => {
    const sent: string[][] = [];
    const answers = new Map<string, () => void>();
    const events = { a1: ev(1), a2: ev(2), b1: ev(3) };
    const name = (id: string) => Object.entries(events).find(([, e]) => e.id === id)![0];
    const deliver: Deliver = (id, body, contentType) =>
      new Promise((resolve) => {
        const ids = contentType === BATCH_CONTENT_TYPE ? (JSON.parse(body) as { batch: { id: string }[] }).batch.map((e) => e.id) : [id];
        sent.push(ids.map(name));
        answers.set(ids.map(name).join(","), () => resolve({ kind: "response", status: 200, body: "" }));
      });
    const send = createBatcher({ max: 100, lingerMs: 0, maxRequests: 4, deliver, retryStatuses });
    const a1 = send(events.a1.id, JSON.stringify(events.a1), "a");
    const a2 = send(events.a2.id, JSON.stringify(events.a2), "a");
    const b1 = send(events.b1.id, JSON.stringify(events.b1), "b");
    expect(sent).toEqual([["a1"], ["b1"]]); // a2 waits for a1's answer; b1 does not
    answers.get("a1")!();
    await a1;
    await new Promise((r) => setImmediate(r));
    expect(sent).toEqual([["a1"], ["b1"], ["a2"]]);
    answers.get("a2")!();
    answers.get("b1")!();
    expect((await Promise.all([a2, b1])).map((v) => v.decision.action)).toEqual(["ack", "ack"]);
  });
});
