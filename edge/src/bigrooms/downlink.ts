// The coordinator's outgoing frames, coalesced like a small room's (one `batch` per window, serialized once),
// with two differences:
// - Frames nobody waits for (reaction totals, presence summaries) do not open a window of their own while chat is
//   flowing. They wait up to `lazyMs` and leave with the next window that chat opens. Every frame a coordinator
//   sends is sent by every shard to every one of its sockets, so at 10 chat messages/s this takes each socket from
//   ~15 frames/s to ~10 (the socket sends are what a shard spends its time on), for at most `lazyMs` more on a
//   reaction total and nothing more on chat.
// - Chat goes out as soon as the current event is done when the last frame left at least `flushMs` ago, and
//   otherwise `flushMs` after that frame: frames stay at least `flushMs` apart, as with a window that waits, but a
//   quiet room's message does not wait for a window nobody else is using (`flushMs` less latency per message at a
//   few messages per second; whatever one event applied still leaves in one frame).
//   The small room's coalescer keeps waiting (rooms/coalescer.ts says why: its own fan-out blocks it, so "quiet"
//   would be every time); the coordinator sends one frame per link, never to the audience itself.
import type { SingleServerFrame } from "../../../shared/protocol/room.ts";
import { joinFlush, MAX_FLUSH_CHARS } from "../rooms/coalescer.ts";

export class DownlinkCoalescer {
  private parts: string[] = [];
  private chars = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private due = Number.POSITIVE_INFINITY;
  private lastFlushAt = Number.NEGATIVE_INFINITY;
  private readonly flushMs: number;
  private readonly lazyMs: number;
  private readonly deliver: (text: string) => void;

  constructor(flushMs: number, lazyMs: number, deliver: (text: string) => void) {
    this.flushMs = flushMs;
    this.lazyMs = Math.max(flushMs, lazyMs);
    this.deliver = deliver;
  }

  /** Queues a frame; `lazy` frames may wait up to lazyMs for a window that chat opens. */
  push(frame: SingleServerFrame, lazy = false): void {
    const text = JSON.stringify(frame);
    if (this.chars + text.length > MAX_FLUSH_CHARS && this.parts.length > 0) this.flush();
    this.parts.push(text);
    this.chars += text.length;
    const now = Date.now();
    // Chat: now (after the current event, so what it applied leaves together), or when the spacing allows.
    const due = lazy ? now + this.lazyMs : Math.max(now, this.lastFlushAt + this.flushMs);
    if (due >= this.due) return;
    if (this.timer) clearTimeout(this.timer);
    this.due = due;
    this.timer = setTimeout(() => this.flush(), Math.max(0, due - now));
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.due = Number.POSITIVE_INFINITY;
    if (this.parts.length === 0) return;
    this.lastFlushAt = Date.now();
    const parts = this.parts;
    this.parts = [];
    this.chars = 0;
    this.deliver(joinFlush(parts));
  }
}
