// Coalesces room-wide frames: instead of one WebSocket send per frame per connection, frames queued within
// `flushMs` go out as one `batch` frame, serialized once and handed to every socket. At 1,000 clients this
// turns N frames x 1,000 sends into 1,000 sends, which is what lets one room sustain high fan-out.
//
// Throttle with a leading edge: when nothing went out for `flushMs`, the first frame goes out right after
// the current handler returns (a microtask, so frames of the same handler still share one message). Quiet
// rooms get no added latency; busy rooms are flushed at most once per `flushMs`.
import type { SingleServerFrame } from "../../../shared/protocol/room.ts";

/** Serializes one flush: a lone frame bare, several as `{type:"batch",frames}` (order kept). Pure. */
export function serializeFlush(frames: SingleServerFrame[]): string {
  if (frames.length === 1) return JSON.stringify(frames[0]);
  return JSON.stringify({ type: "batch", frames });
}

export class FrameCoalescer {
  private frames: SingleServerFrame[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private scheduled = false;
  private lastFlushAt = -Infinity;
  private readonly flushMs: number;
  private readonly deliver: (text: string, except?: WebSocket) => void;

  /** `deliver` sends one serialized message to every open socket of the room (but `except`). */
  constructor(flushMs: number, deliver: (text: string, except?: WebSocket) => void) {
    this.flushMs = flushMs;
    this.deliver = deliver;
  }

  push(frame: SingleServerFrame): void {
    this.frames.push(frame);
    if (this.scheduled) return;
    this.scheduled = true;
    const wait = this.lastFlushAt + this.flushMs - Date.now();
    if (wait <= 0) queueMicrotask(() => this.flush());
    else this.timer = setTimeout(() => this.flush(), wait);
  }

  /** Sends what is queued now (e.g. before closing a kicked user's sockets, so they learn why). */
  flush(except?: WebSocket): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.scheduled = false;
    if (this.frames.length === 0) return;
    const frames = this.frames;
    this.frames = [];
    this.lastFlushAt = Date.now();
    this.deliver(serializeFlush(frames), except);
  }
}
