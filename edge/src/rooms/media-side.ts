// Chat messages and presence joins/leaves go to the media side (moderation and other consumers) as
// `chat.message` / `presence.update` events through the edge outbox. This is off the hot path by design:
// events are batched per flush and handed over with waitUntil, and a failing outbox is logged, never felt
// by chat. Memory is bounded: past MAX_PENDING the oldest unsent events are dropped (and counted in logs).
import type { Envelope } from "../../../shared/envelope.ts";
import type { Env } from "../env.ts";
import { sendToMediaSide } from "../outbox/send.ts";

export const MAX_PENDING = 5000;

export class MediaSideForwarder {
  private pending: Envelope[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private failures = 0;
  private dropped = 0;
  private readonly env: Env;
  private readonly ctx: DurableObjectState;
  private readonly roomId: () => string;
  private readonly flushMs: number;

  constructor(env: Env, ctx: DurableObjectState, roomId: () => string, flushMs: number) {
    this.env = env;
    this.ctx = ctx;
    this.roomId = roomId;
    this.flushMs = flushMs;
  }

  queue(event: Envelope): void {
    this.pending.push(event);
    if (this.pending.length > MAX_PENDING) {
      this.pending.shift();
      this.dropped++;
    }
    this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  flush(): void {
    this.timer = null;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    const roomId = this.roomId();
    const handoff = (async () => {
      try {
        await sendToMediaSide(this.env, batch, roomId);
      } catch (error) {
        // Log the first failure and then every 100th, so a missing outbox does not flood the logs.
        if (this.failures++ % 100 === 0) {
          console.warn(`room ${roomId}: could not hand ${batch.length} event(s) to the outbox (failure #${this.failures}, ${this.dropped} dropped for memory):`, error instanceof Error ? error.message : error);
        }
      }
    })();
    this.ctx.waitUntil(handoff);
  }
}
