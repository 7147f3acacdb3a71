// The media node's durable outbox: publish() returns once the event is fsync'd to the local log; a pump hands
// events to JetStream in emission order (as soon as they are written, overlapping the fsync) and moves the cursor
// past every event JetStream confirmed.
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

/** The log is emptied once it is all confirmed and this big, or once the outbox has been idle this long. */
const COMPACT_AT_BYTES = 1024 * 1024;
const COMPACT_IDLE_MS = 1000;

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
  private compactTimer: NodeJS.Timeout | undefined;
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
        // Written (not yet synced) lines go to the pump at once, so publishing to JetStream overlaps the fsync:
        // the fsync's time (tens of ms on a busy disk) is no longer part of every event's latency. publish() still
        // resolves only once the event is on disk.
        const ends = await this.serial(() => this.log.write(batch.map((w) => w.json)));
        batch.forEach((w, i) => this.queue.push({ event: w.event, json: w.json, end: ends[i]! }));
        this.wake?.();
        await this.serial(() => this.log.sync());
        for (const w of batch) w.resolve();
      } catch (error) {
        // Not on disk: the callers learn it and still hold their events (which may still reach JetStream: a
        // repeat is dropped downstream by its id).
        for (const w of batch) w.reject(new Error(`outbox write failed: ${(error as Error).message}`));
      }
    }
    this.flushing = null;
  }

  /**
   * Hands queued events to JetStream in order, in rounds of up to `window` sent back to back on one connection
   * (so JetStream stores them in this order), and moves the cursor past the confirmed ones. A new round starts
   * once the round in flight has settled: were rounds to overlap, a round sent while the connection is being lost
   * could be stored after the reconnect, ahead of an earlier one whose acks were lost and that is re-sent only
   * after its timeout. The cursor is written and the log compacted off this path (see persistCursor and
   * scheduleCompaction): the next round does not wait for file operations.
   */
  private async pump(): Promise<void> {
    while (this.running) {
      if (this.queue.length === 0) {
        if (!this.flushing && this.writes.length === 0) {
          if (this.idleWaiters.length > 0) {
            // Someone waits for the outbox to be drained (a stop, a test): leave the file empty for them.
            clearTimeout(this.compactTimer);
            await this.serial(() => this.log.compact()).catch(() => undefined);
            if (this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
          } else this.scheduleCompaction();
        }
        // Re-checked after the awaits above: a flush may have queued events meanwhile.
        if (this.queue.length === 0 && this.running) await new Promise<void>((r) => (this.wake = r));
        this.wake = null;
        continue;
      }
      const window = this.queue.slice(0, this.opts.window);
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
        this.log.cursor = window[confirmed - 1]!.end;
        void this.log.persistCursor().catch((error: unknown) => this.opts.log?.(`outbox: cursor not written (${(error as Error).message}); a restart may re-send confirmed events`));
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

  /**
   * Empties the log file once every event in it is confirmed: at once when it has grown past COMPACT_AT_BYTES,
   * else after the outbox stayed idle for COMPACT_IDLE_MS (not after every event of a steady trickle: each
   * truncation is a file operation the publishing path would otherwise queue behind).
   */
  private scheduleCompaction(): void {
    const run = () => void this.serial(() => this.log.compact()).catch((error: unknown) => this.opts.log?.(`outbox: compaction failed: ${(error as Error).message}`));
    if (this.log.size >= COMPACT_AT_BYTES) return run();
    clearTimeout(this.compactTimer);
    this.compactTimer = setTimeout(run, COMPACT_IDLE_MS);
    this.compactTimer.unref();
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
    clearTimeout(this.compactTimer);
    await this.serial(() => this.log.compact()).catch(() => undefined);
    await this.log.close();
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
