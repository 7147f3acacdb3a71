// The coordinator's outgoing frames, coalesced like a small room's (one `batch` per window, serialized once),
// with one difference: frames nobody waits for (reaction totals, presence summaries) do not open a window of
// their own while chat is flowing. They wait up to `lazyMs` and leave with the next window that chat opens.
// Every frame a coordinator sends is sent by every shard to every one of its sockets, so at 10 chat messages/s
// this takes each socket from ~15 frames/s to ~10 (the socket sends are what a shard spends its time on), for at
// most `lazyMs` more on a reaction total and nothing more on chat.
import type { SingleServerFrame } from "../../../shared/protocol/room.ts";
import { joinFlush, MAX_FLUSH_CHARS } from "../rooms/coalescer.ts";

export class DownlinkCoalescer {
  private parts: string[] = [];
  private chars = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private due = Number.POSITIVE_INFINITY;
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
    const due = Date.now() + (lazy ? this.lazyMs : this.flushMs);
    if (due >= this.due) return;
    if (this.timer) clearTimeout(this.timer);
    this.due = due;
    this.timer = setTimeout(() => this.flush(), due - Date.now());
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.due = Number.POSITIVE_INFINITY;
    if (this.parts.length === 0) return;
    const parts = this.parts;
    this.parts = [];
    this.chars = 0;
    this.deliver(joinFlush(parts));
  }
}
