// The media node's durable outbox: publish() returns once the event is fsync'd to the local log; a pump then
// hands events to JetStream in emission order and moves the cursor past every event JetStream confirmed.
// While NATS is unreachable (or before it was ever reached) events wait on disk; a restart picks them up again.

import type { Envelope } from "../../../../shared/envelope.ts";
import { parseEvent } from "../../../../shared/envelope.ts";
import { encodeEvent, type Stored } from "../publish.ts";
import { backoffDelay } from "../../../../shared/backoff.ts";
import { type LoggedEvent, OutboxLog } from "./outbox-log.ts";

export interface OutboxOptions {
  dir: string;
  /** refuse new events beyond this many unconfirmed bytes on disk */
  maxBytes: number;
  /** events in flight to JetStream at once, in order */
  window: number;
  /** stores one event; rejects when JetStream is unreachable or does not confirm in time */
  store: (event: Envelope, bytes: Uint8Array) => Promise<Stored>;
  log?: (message: string) => void;
}

interface PendingWrite {
  event: Envelope;
  json: string;
  resolve: () => void;
  reject: (error: Error) => void;
}

export class OutboxFullError extends Error {
  override name = "OutboxFullError";
}

export class Outbox {
  private readonly opts: OutboxOptions;
  private log!: OutboxLog;
  /** fsync'd, not yet confirmed by JetStream, in order */
  private queue: LoggedEvent[] = [];
  /** accepted by publish(), waiting for the next group commit */
  private writes: PendingWrite[] = [];
  private writeBytes = 0;
  private flushing: Promise<void> | null = null;
  private io: Promise<unknown> = Promise.resolve();
  private running = false;
  private pumpDone: Promise<void> = Promise.resolve();
  private wake: (() => void) | null = null;
  private cutBackoff: (() => void) | null = null;
  private idleWaiters: (() => void)[] = [];
  private failures = 0;
  /** counters for metrics and tests */
  readonly stats = { published: 0, duplicates: 0, failedAttempts: 0 };

  constructor(opts: OutboxOptions) {
    this.opts = opts;
  }

  /** Opens the log (taking the directory's lock) and starts pumping what is already there. */
  async start(): Promise<void> {
    const opened = await OutboxLog.open(this.opts.dir);
    this.log = opened.log;
    this.queue = opened.pending;
    if (opened.rejected > 0) this.opts.log?.(`outbox: ${opened.rejected} unreadable line(s) moved to rejected.jsonl`);
    if (this.queue.length > 0) this.opts.log?.(`outbox: ${this.queue.length} event(s) from before the restart waiting for JetStream`);
    this.running = true;
    this.pumpDone = this.pump();
  }

  /** Events on disk that JetStream has not confirmed yet (including ones being written). */
  get backlog(): number {
    return this.queue.length + this.writes.length;
  }

  /**
   * Stores the event durably; resolves once it is on disk (not once it is in JetStream).
   * Rejects, storing nothing, for a malformed or oversized event or a full outbox.
   */
  publish(event: Envelope): Promise<void> {
    if (!this.running) return Promise.reject(new Error("outbox is not running"));
    const checked = parseEvent(event);
    if (!checked.ok) return Promise.reject(new Error(`refusing to publish: ${checked.error}`));
    let json: string;
    try {
      json = new TextDecoder().decode(encodeEvent(checked.event));
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const backlogBytes = this.log.size - this.log.cursor + this.writeBytes;
    if (backlogBytes + json.length > this.opts.maxBytes) {
      return Promise.reject(new OutboxFullError(`outbox is full (${backlogBytes} bytes waiting for JetStream); event ${event.id} not stored`));
    }
    return new Promise<void>((resolve, reject) => {
      this.writes.push({ event: checked.event, json, resolve, reject });
      this.writeBytes += json.length + 1;
      // Group commit: every publish() of this tick shares one write and one fsync.
      if (!this.flushing) this.flushing = new Promise<void>((r) => setImmediate(r)).then(() => this.flush());
    });
  }

  private async flush(): Promise<void> {
    while (this.writes.length > 0) {
      const batch = this.writes;
      this.writes = [];
      this.writeBytes = 0;
      try {
        const ends = await this.serial(() => this.log.append(batch.map((w) => w.json)));
        batch.forEach((w, i) => this.queue.push({ event: w.event, json: w.json, end: ends[i]! }));
        for (const w of batch) w.resolve();
        this.wake?.();
      } catch (error) {
        // Not on disk: the callers learn it and still hold their events.
        for (const w of batch) w.reject(new Error(`outbox write failed: ${(error as Error).message}`));
      }
    }
    this.flushing = null;
  }

  private async pump(): Promise<void> {
    while (this.running) {
      if (this.queue.length === 0) {
        if (!this.flushing && this.writes.length === 0) {
          await this.serial(() => this.log.compact());
          if (this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
        }
        // Re-checked after the await above: a flush may have queued events meanwhile.
        if (this.queue.length === 0 && this.running) await new Promise<void>((r) => (this.wake = r));
        this.wake = null;
        continue;
      }
      const window = this.queue.slice(0, this.opts.window);
      // Issued back to back on one connection, so JetStream stores them in this order.
      const results = await Promise.allSettled(window.map((e) => this.opts.store(e.event, new TextEncoder().encode(e.json))));
      let confirmed = 0;
      for (const r of results) {
        if (r.status !== "fulfilled") break;
        confirmed++;
        if (r.value.duplicate) this.stats.duplicates++;
        else this.stats.published++;
      }
      if (confirmed > 0) {
        this.queue.splice(0, confirmed);
        await this.log.setCursor(window[confirmed - 1]!.end);
      }
      if (confirmed < window.length) {
        const failed = results[confirmed] as PromiseRejectedResult;
        this.stats.failedAttempts++;
        if (this.failures++ === 0) {
          this.opts.log?.(`outbox: JetStream not storing events (${(failed.reason as Error)?.message ?? failed.reason}); ${this.queue.length} waiting on disk, retrying`);
        }
        // Later events of the window may have been stored; they are re-sent and dropped as duplicates.
        await this.sleep(backoffDelay(this.failures, { baseMs: 100, maxMs: 5_000 }));
      } else if (this.failures > 0) {
        this.opts.log?.(`outbox: JetStream storing again after ${this.failures} failed attempt(s)`);
        this.failures = 0;
      }
    }
  }

  /** Appends and truncation must not interleave (a truncate would cut a fresh append). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.io.then(fn);
    this.io = run.catch(() => undefined);
    return run;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.cutBackoff = null;
        resolve();
      }, ms);
      this.cutBackoff = () => {
        this.cutBackoff = null;
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** JetStream is reachable again (a (re)connect): retry now instead of at the end of the current backoff. */
  nudge(): void {
    this.cutBackoff?.();
  }

  /** Resolves once every event published so far is confirmed by JetStream. */
  drained(): Promise<void> {
    if (this.queue.length === 0 && this.writes.length === 0 && !this.flushing) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops after the window in flight; what is not confirmed stays on disk for the next start. */
  async stop(): Promise<void> {
    if (!this.running) return;
    await this.flushing;
    this.running = false;
    this.wake?.();
    this.cutBackoff?.();
    await this.pumpDone;
    await this.log.close();
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
