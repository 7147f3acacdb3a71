// What to do with each event of a batch after one attempt (shared/batch.ts wire format). Pure, like classify.ts.
//
// - 200 with `{results:[...]}`: per event, by shared/batch.ts resultAction: done -> ack, rejected -> dead-letter
//   with the edge's code and message, failed -> retry. An event the answer has no result for is retried: it is
//   never acked on a guess.
// - A whole-request failure (connection error, timeout, 5xx, a status in BRIDGE_RETRY_STATUSES, a redirect):
//   every event is retried, exactly as a single event would be.
// - A whole-batch permanent 4xx (400 malformed_batch, 413, 415 from an edge that does not take batches, ...):
//   the batch as a whole was refused, which says nothing about any one event. Dead-lettering them all would park
//   good events for an operator; so the batch is SPLIT: each event is sent again alone, in the single-event form,
//   and gets its own verdict (a bad one is dead-lettered with its own reason, the good ones are delivered).
// - A 2xx without readable results (an edge that answered something else): split too, for the same reason;
//   a repeat of an event it did apply is a duplicate at the edge, not a second effect.

import { batchResponseSchema, type EventResult, resultAction } from "../../../../shared/batch.ts";
import { type AttemptOutcome, classify, type Decision } from "./classify.ts";

export interface EventVerdict {
  decision: Decision;
  /** label for the retried metric when the decision is a retry */
  cause: string;
  /** the HTTP status the verdict came from, when it was one event's own status */
  status?: number;
}

export type BatchVerdict = { split: true; reason: string } | { split: false; events: EventVerdict[] };

/** The verdict for an event sent alone (single-event form), from its HTTP outcome. */
export function singleVerdict(outcome: AttemptOutcome, retryStatuses: Set<number>): EventVerdict {
  const decision = classify(outcome, retryStatuses);
  if (outcome.kind === "error") return { decision, cause: "error" };
  return { decision, cause: String(outcome.status), status: outcome.status };
}

function fromResult(result: EventResult | undefined): EventVerdict {
  if (!result) return { decision: { action: "retry", reason: "the edge's batch answer has no result for this event" }, cause: "no_result" };
  const detail = `${result.code ?? result.status}${result.message ? `: ${result.message}` : ""}`;
  switch (resultAction(result)) {
    case "done":
      return { decision: { action: "ack" }, cause: "" };
    case "dead-letter":
      return { decision: { action: "dead-letter", reason: `edge rejected it in a batch: ${detail}` }, cause: "" };
    case "retry":
      return { decision: { action: "retry", reason: `edge failed it in a batch: ${detail}` }, cause: "event_failed" };
  }
}

/** Per-event verdicts for a batch of events with these `ids` (in the order they were sent), or a split. */
export function classifyBatch(outcome: AttemptOutcome, ids: readonly string[], retryStatuses: Set<number>): BatchVerdict {
  if (outcome.kind === "response" && outcome.status >= 200 && outcome.status < 300) {
    let parsed;
    try {
      parsed = batchResponseSchema.safeParse(JSON.parse(outcome.body));
    } catch {
      parsed = undefined;
    }
    if (!parsed?.success || parsed.data.results.length === 0) {
      return { split: true, reason: `edge answered the batch ${outcome.status} without per-event results: ${outcome.body.slice(0, 200)}` };
    }
    const results = parsed.data.results;
    const byId = new Map<string, EventResult>();
    for (const r of results) if (!byId.has(r.id)) byId.set(r.id, r);
    // Results come in the order sent; by id only when the edge reordered or left some out.
    return { split: false, events: ids.map((id, i) => fromResult(results[i]?.id === id ? results[i] : byId.get(id))) };
  }
  const whole = singleVerdict(outcome, retryStatuses);
  if (whole.decision.action === "dead-letter") {
    return { split: true, reason: `edge refused the batch as a whole with ${whole.status}: ${outcome.kind === "response" ? outcome.body.slice(0, 200) : ""}` };
  }
  return { split: false, events: ids.map(() => whole) };
}
