// The signaling side of a room connection: `signal` and `call.*` frames, which the room pays from a budget of their
// own (ROOM_SIGNAL_RATE_PER_S, ROOM_SIGNAL_BURST). The queue gives each frame an id, writes frames in order at a
// pace that stays inside the budget (a local copy of the room's token bucket, a little slower than the room's own
// refill), and keeps what it wrote for a while so that a frame the room refuses for rate — named by its id — is
// written again after the delay the room asks for (ahead of what is still queued, but after what was written while
// the refusal was on its way). Every other refusal, and every frame still queued when the
// socket drops, is reported: a signaling frame either reaches the room or its sender hears about it.
import type { MediaState } from "../protocol/room.ts";

export interface IceCandidateInit {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}

export interface SignalMessage {
  kind: "offer" | "answer" | "candidate" | "bye";
  sdp?: string;
  candidate?: IceCandidateInit;
}

export type SignalingFrame = { id: string } & (
  | ({ type: "signal"; to: string } & SignalMessage)
  | { type: "call.join"; media: MediaState; replaces?: string }
  | { type: "call.update"; media: MediaState }
  | { type: "call.leave" }
);

type Unsent = SignalingFrame extends infer F ? (F extends SignalingFrame ? Omit<F, "id"> : never) : never;

/** A signaling frame that did not reach the room, and why. */
export interface SignalRefusal {
  /** the frame's id (what `RoomClient.signal()` / `joinCall()` returned) */
  id: string;
  /** the room's error code, or `disconnected` for a frame still queued when the socket dropped */
  code: string;
  message: string;
  frame: SignalingFrame;
}

export interface SignalBudget {
  ratePerS: number;
  burst: number;
}

/** The room's defaults (ROOM_SIGNAL_RATE_PER_S / ROOM_SIGNAL_BURST), used until a call.welcome says otherwise. */
export const DEFAULT_SIGNAL_BUDGET: SignalBudget = { ratePerS: 50, burst: 200 };
/**
 * The local bucket refills this much slower than the room's and keeps a couple of tokens in hand: the room reads
 * its clock when it handles a frame, which on a busy runtime can lag the frame's arrival, so a client pacing at
 * exactly the room's rate would now and then be refused.
 */
const PACE_MARGIN = 0.8;
const BURST_RESERVE = 2;
/** Written frames kept for a resend; a refusal comes back within one round trip, long before this many. */
const KEEP_SENT = 1024;

interface Entry {
  seq: number;
  frame: SignalingFrame;
}

export class SignalQueue {
  private readonly write: (text: string) => boolean;
  private readonly onRefused: (refusal: SignalRefusal) => void;
  private queue: Entry[] = [];
  private readonly sent = new Map<string, Entry>();
  private budget: SignalBudget = DEFAULT_SIGNAL_BUDGET;
  private tokens = DEFAULT_SIGNAL_BUDGET.burst;
  private at = 0;
  private pausedUntil = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private isOpen = false;
  private seq = 0;
  private readonly sentTo = new Map<string, number>();
  private resent = 0;
  private refusedCount = 0;

  constructor(opts: { write: (text: string) => boolean; refused: (refusal: SignalRefusal) => void }) {
    this.write = opts.write;
    this.onRefused = opts.refused;
  }

  /** Queues a frame; returns its id. */
  push(frame: Unsent): string {
    const id = `g${(++this.seq).toString(36)}`;
    const full = { ...frame, id } as SignalingFrame;
    if (!this.isOpen) {
      // Nowhere to send it: the caller learns at once (asynchronously, like any refusal).
      queueMicrotask(() => this.onRefused({ id, code: "disconnected", message: "the room connection is not open", frame: full }));
      return id;
    }
    this.queue.push({ seq: this.seq, frame: full });
    this.pump();
    return id;
  }

  /** The socket is open and welcomed: a new connection, whose signaling bucket at the room is full. */
  open(): void {
    this.isOpen = true;
    // Counts are per connection: the peers know this one by its new id.
    this.sentTo.clear();
    this.tokens = this.burst();
    this.at = Date.now();
    this.pausedUntil = 0;
    this.pump();
  }

  /** The socket dropped: nothing queued can be delivered any more (its addressees knew a connection id now gone). */
  disconnected(): void {
    this.isOpen = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const dropped = this.queue;
    this.queue = [];
    this.sent.clear();
    for (const e of dropped) this.onRefused({ id: e.frame.id, code: "disconnected", message: "the room connection dropped before this frame was sent", frame: e.frame });
  }

  setBudget(budget: SignalBudget): void {
    this.budget = budget;
    this.tokens = Math.min(this.tokens, this.burst());
  }

  private burst(): number {
    return Math.max(1, this.budget.burst - BURST_RESERVE);
  }

  /** An error frame the room sent about a signaling frame; false when it is not about a frame of this queue. */
  refused(error: { code: string; message: string; id?: string; retryAfterMs?: number }): boolean {
    const entry = error.id !== undefined ? this.sent.get(error.id) : undefined;
    if (!entry) return false;
    this.sent.delete(entry.frame.id);
    this.uncount(entry.frame);
    if (error.code === "rate_limited") {
      // Back in the queue ahead of everything not yet written, and nothing goes out until the room has a token again.
      // (Frames written after it, before the refusal came back, may already have been relayed: it arrives after them.)
      this.resent++;
      const at = this.queue.findIndex((e) => e.seq > entry.seq);
      this.queue.splice(at < 0 ? this.queue.length : at, 0, entry);
      this.pausedUntil = Math.max(this.pausedUntil, Date.now() + (error.retryAfterMs ?? 1000 / this.budget.ratePerS));
      this.tokens = 0;
      this.at = Date.now();
      this.schedule(this.pausedUntil - Date.now());
      return true;
    }
    this.refusedCount++;
    this.onRefused({ id: entry.frame.id, code: error.code, message: error.message, frame: entry.frame });
    return true;
  }

  counts(): { sentTo: Record<string, number>; resent: number; refused: number; queued: number } {
    return { sentTo: Object.fromEntries(this.sentTo), resent: this.resent, refused: this.refusedCount, queued: this.queue.length };
  }

  private pump(): void {
    if (this.timer) return;
    while (this.isOpen && this.queue.length > 0) {
      const now = Date.now();
      this.tokens = Math.min(this.burst(), this.tokens + ((now - this.at) * this.budget.ratePerS * PACE_MARGIN) / 1000);
      this.at = now;
      if (now < this.pausedUntil) return this.schedule(this.pausedUntil - now);
      if (this.tokens < 1) return this.schedule(((1 - this.tokens) * 1000) / (this.budget.ratePerS * PACE_MARGIN));
      const entry = this.queue[0]!;
      if (!this.write(JSON.stringify(entry.frame))) return; // closing: disconnected() reports what is left
      this.queue.shift();
      this.tokens -= 1;
      this.sent.set(entry.frame.id, entry);
      if (this.sent.size > KEEP_SENT) this.sent.delete(this.sent.keys().next().value!);
      this.count(entry.frame);
    }
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pump();
    }, Math.max(1, Math.ceil(ms)));
  }

  private count(frame: SignalingFrame): void {
    if (frame.type === "signal") this.sentTo.set(frame.to, (this.sentTo.get(frame.to) ?? 0) + 1);
  }

  private uncount(frame: SignalingFrame): void {
    if (frame.type === "signal") this.sentTo.set(frame.to, Math.max(0, (this.sentTo.get(frame.to) ?? 0) - 1));
  }
}
