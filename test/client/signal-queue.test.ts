import { describe, expect, it } from "vitest";
import { type FrameLimits, checkClientFrame, newBuckets } from "../../edge/src/rooms/client-frames.ts";
import { type SignalBudget, SignalQueue, type SignalRefusal } from "../../shared/client/signal-queue.ts";

// The client side of the signaling budget, against the room's own frame check (edge/src/rooms/client-frames.ts:
// the same token buckets, strikes and error frames a room applies) over a simulated link with a round trip. The
// browser tests run the real link; here the room's budget can be made to disagree with what the client was told.

const ROOM: FrameLimits = { maxFrameBytes: 32 * 1024, ratePerS: 20, rateBurst: 40, rateStrikes: 20, signalRatePerS: 50, signalBurst: 20 };

/** A room at the far end of a link of `rttMs`: checks each frame as a room does and answers refusals by id. */
function link(opts: { rttMs: number; missing?: Set<string> }) {
  const buckets = newBuckets(ROOM, Date.now());
  const delivered: { id: string; to?: string; n?: string }[] = [];
  const refusals: SignalRefusal[] = [];
  let closed: string | null = null;
  let q!: SignalQueue;
  const queue = new SignalQueue({
    write(text) {
      if (closed) return false;
      setTimeout(() => {
        const verdict = checkClientFrame(text, buckets, Date.now(), ROOM);
        if (verdict.kind === "close") return void (closed = verdict.reason);
        const frame = JSON.parse(text) as { id: string; to?: string; candidate?: { candidate: string } };
        let error = verdict.kind === "error" ? verdict : null;
        if (!error && frame.to !== undefined && opts.missing?.has(frame.to)) error = { kind: "error", code: "peer_not_found", message: `no connection '${frame.to}'`, ref: "signal", id: frame.id };
        if (error) return void setTimeout(() => q.refused(error), opts.rttMs / 2);
        delivered.push({ id: frame.id, ...(frame.to ? { to: frame.to } : {}), ...(frame.candidate ? { n: frame.candidate.candidate } : {}) });
      }, opts.rttMs / 2);
      return true;
    },
    refused: (r) => refusals.push(r),
  });
  q = queue;
  return { queue, delivered, refusals, closed: () => closed };
}

/** Queues candidate number `i` to `to`; returns the frame id. */
const signal = (queue: SignalQueue, to: string, i: number) => queue.push({ type: "signal", to, kind: "candidate", candidate: { candidate: `c${i}`, sdpMid: "0", sdpMLineIndex: 0 } });
const until = async (what: string, check: () => boolean, ms = 10_000) => {
  const t0 = Date.now();
  // Polls a simulated room's state: the queue's own timers are what moves it on.
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe("signaling queue against the room's budget", () => {
  it("paces a burst of 100 to the announced budget: all delivered in order, nothing refused", async () => {
    const l = link({ rttMs: 4 });
    l.queue.setBudget({ ratePerS: ROOM.signalRatePerS, burst: ROOM.signalBurst });
    l.queue.open();
    const ids = Array.from({ length: 100 }, (_, i) => signal(l.queue, "peer", i));
    await until("100 delivered", () => l.delivered.length === 100);
    expect(l.delivered.map((d) => d.n)).toEqual(Array.from({ length: 100 }, (_, i) => `c${i}`));
    expect(l.delivered.map((d) => d.id)).toEqual(ids);
    expect(l.queue.counts()).toMatchObject({ sentTo: { peer: 100 }, resent: 0, refused: 0, queued: 0 });
    expect(l.refusals).toEqual([]);
  });

  it("a frame refused for rate comes back by id and goes out again after the delay the room names: none lost, order kept", async () => {
    const l = link({ rttMs: 4 });
    // Told more than the room allows (a budget lowered since): the frames past the room's burst are refused.
    const told: SignalBudget = { ratePerS: ROOM.signalRatePerS, burst: ROOM.signalBurst + 10 };
    l.queue.setBudget(told);
    l.queue.open();
    for (let i = 0; i < 100; i++) signal(l.queue, "peer", i);
    await until("100 delivered", () => l.delivered.length === 100);
    expect(l.delivered.map((d) => d.n)).toEqual(Array.from({ length: 100 }, (_, i) => `c${i}`));
    expect(new Set(l.delivered.map((d) => d.id)).size).toBe(100);
    const counts = l.queue.counts();
    expect(counts.resent).toBeGreaterThanOrEqual(5);
    expect(counts).toMatchObject({ sentTo: { peer: 100 }, refused: 0, queued: 0 });
    // Rate refusals are the queue's business, not the caller's; and the room never lost patience (no close).
    expect(l.refusals).toEqual([]);
    expect(l.closed()).toBeNull();
  });

  it("every other refusal is reported with the frame's id; frames still queued when the socket drops are reported too", async () => {
    const l = link({ rttMs: 4, missing: new Set(["gone"]) });
    l.queue.setBudget({ ratePerS: 50, burst: 4 }); // two at once here (the queue keeps two in hand)
    l.queue.open();
    const lost = signal(l.queue, "gone", 0);
    const fine = signal(l.queue, "peer", 1);
    const waiting = [signal(l.queue, "peer", 2), signal(l.queue, "peer", 3)];
    await until("the refusal", () => l.refusals.length === 1);
    expect(l.refusals[0]).toMatchObject({ id: lost, code: "peer_not_found", frame: { type: "signal", to: "gone", id: lost } });
    l.queue.disconnected();
    const dropped = l.refusals.slice(1);
    expect(dropped.map((r) => [r.id, r.code])).toEqual(waiting.filter((id) => !l.delivered.some((d) => d.id === id)).map((id) => [id, "disconnected"]));
    expect(l.delivered.map((d) => d.id)).toContain(fine);
    // Every frame is accounted for: delivered, or reported.
    expect(l.delivered.length + l.refusals.length).toBe(4);
    // Closed: a new frame is reported at once, not queued.
    const after = signal(l.queue, "peer", 4);
    await until("the closed refusal", () => l.refusals.some((r) => r.id === after));
    expect(l.refusals.at(-1)).toMatchObject({ id: after, code: "disconnected" });
  });
});
