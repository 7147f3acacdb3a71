// The outbox's on-disk form: an append-only file of events, one JSON line each, plus a cursor file holding the
// byte offset of the first event JetStream has not confirmed yet.
//
// Why this shape: an append plus one fsync per batch is the cheapest durable write there is, and it keeps the
// emission order for free. The cursor need not be fsync'd: if it is lost or stale, the events after it are
// published again and JetStream (same event id = same Nats-Msg-Id) or the edge's ledger drops the repeats. For
// the same reason an event may be published before its fsync finished (the outbox overlaps the two): a crash in
// between at worst leaves a cursor past the file's end, which reads as "publish everything again".
// Once every event is confirmed the file is truncated, so a healthy outbox stays near zero bytes.
//
// A crash in the middle of an append leaves a partial last line. Its publish() never resolved, so nobody was
// told it was stored: it is cut off at open.

import { mkdir, open, readFile, rename, rm, writeFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { parseEventJson, type Envelope } from "../../../../shared/envelope.ts";
import { fromUtf8 } from "../../../../shared/encoding.ts";

export interface LoggedEvent {
  event: Envelope;
  /** the JSON text as written (and as it will be published) */
  json: string;
  /** byte offset just past this event's line: the cursor value once it is confirmed */
  end: number;
}

export interface OpenedLog {
  log: OutboxLog;
  /** events not yet confirmed, in emission order */
  pending: LoggedEvent[];
  /** lines that were not valid events (moved aside to `rejected.jsonl`) */
  rejected: number;
}

const LOG = "events.jsonl";
const CURSOR = "cursor";
const LOCK = "lock";
const REJECTED = "rejected.jsonl";
/** The least time between two cursor writes on the publishing path (see persistCursor). */
const CURSOR_WRITE_INTERVAL_MS = 50;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** One process per outbox directory: two pumps on one file would publish and truncate under each other. */
async function lock(dir: string): Promise<void> {
  const path = join(dir, LOCK);
  try {
    await writeFile(path, String(process.pid), { flag: "wx" });
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  const holder = Number((await readFile(path, "utf8").catch(() => "")).trim());
  if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
    throw new Error(`outbox ${dir} is in use by process ${holder}`);
  }
  // Left behind by a process that died: take it over.
  await writeFile(path, String(process.pid));
}

export class OutboxLog {
  readonly dir: string;
  private fh: FileHandle;
  /** bytes in the log file */
  size: number;
  /** offset of the first unconfirmed event */
  cursor: number;

  private constructor(dir: string, fh: FileHandle, size: number, cursor: number) {
    this.dir = dir;
    this.fh = fh;
    this.size = size;
    this.cursor = cursor;
  }

  static async open(dir: string): Promise<OpenedLog> {
    await mkdir(dir, { recursive: true });
    await lock(dir);
    const logPath = join(dir, LOG);
    const bytes = await readFile(logPath).catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? Buffer.alloc(0) : Promise.reject(e)));
    // Cut a partial last line (a crash mid-append).
    const complete = bytes.lastIndexOf(0x0a) + 1;
    let cursor = Number((await readFile(join(dir, CURSOR), "utf8").catch(() => "0")).trim());
    // A cursor that does not fit the file (file replaced by hand, garbage) means: publish everything again.
    if (!Number.isInteger(cursor) || cursor < 0 || cursor > complete || (cursor > 0 && bytes[cursor - 1] !== 0x0a)) cursor = 0;

    const pending: LoggedEvent[] = [];
    const rejectedLines: string[] = [];
    let offset = cursor;
    while (offset < complete) {
      const nl = bytes.indexOf(0x0a, offset);
      const line = fromUtf8(bytes.subarray(offset, nl));
      offset = nl + 1;
      if (line.length === 0) continue;
      const parsed = parseEventJson(line);
      if (parsed.ok) pending.push({ event: parsed.event, json: line, end: offset });
      else rejectedLines.push(line);
    }
    if (rejectedLines.length > 0) await writeFile(join(dir, REJECTED), rejectedLines.join("\n") + "\n", { flag: "a" });

    const fh = await open(logPath, "a+");
    if (complete < bytes.length) await fh.truncate(complete);
    const log = new OutboxLog(dir, fh, complete, cursor);
    // Nothing pending: start from an empty file.
    if (pending.length === 0) await log.compact();
    return { log, pending, rejected: rejectedLines.length };
  }

  /** Appends lines (each without its newline) and fsyncs; returns each line's end offset. */
  async append(lines: string[]): Promise<number[]> {
    const ends = await this.write(lines);
    await this.sync();
    return ends;
  }

  /**
   * Appends lines without waiting for the disk: readable at once (the pump may publish them), durable after
   * sync(). Returns each line's end offset.
   */
  async write(lines: string[]): Promise<number[]> {
    const buffers = lines.map((l) => Buffer.from(l + "\n"));
    const chunk = Buffer.concat(buffers);
    let written = 0;
    while (written < chunk.length) written += (await this.fh.write(chunk, written)).bytesWritten;
    const ends: number[] = [];
    let at = this.size;
    for (const b of buffers) ends.push((at += b.length));
    this.size = at;
    return ends;
  }

  /** Everything written so far is on disk. */
  async sync(): Promise<void> {
    await this.fh.datasync();
  }

  /** Moves the cursor and writes it now (not at the next interval). */
  async setCursor(offset: number): Promise<void> {
    this.cursor = offset;
    await this.persistCursor(true);
  }

  #cursorWrite: Promise<void> | undefined;
  #cursorDirty = false;
  #cursorUrgent = false;
  #cursorWake: (() => void) | undefined;
  #cursorWrittenAt = 0;

  /**
   * Writes the in-memory cursor to its file, off the publishing path: one write at a time, at most one per
   * CURSOR_WRITE_INTERVAL_MS unless `now`, and writes asked for meanwhile collapse into one with the latest value.
   * A write is four file operations, and a busy publisher confirms a round of events every millisecond or two;
   * a cursor that lags by one interval only means a crash re-sends those already-confirmed events, which are
   * dropped downstream by their id. (Not fsync'd either: see the header.)
   */
  persistCursor(now = false): Promise<void> {
    this.#cursorDirty = true;
    if (now) {
      this.#cursorUrgent = true;
      this.#cursorWake?.();
    }
    this.#cursorWrite ??= (async () => {
      try {
        while (this.#cursorDirty) {
          const wait = this.#cursorWrittenAt + CURSOR_WRITE_INTERVAL_MS - Date.now();
          if (wait > 0 && !this.#cursorUrgent) {
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, wait);
              this.#cursorWake = () => (clearTimeout(timer), resolve());
            });
            this.#cursorWake = undefined;
          }
          this.#cursorDirty = false;
          this.#cursorUrgent = false;
          // Write-then-rename so a crash leaves the old cursor or the new one, never a torn number.
          const tmp = join(this.dir, `${CURSOR}.tmp`);
          await writeFile(tmp, String(this.cursor));
          await rename(tmp, join(this.dir, CURSOR));
          this.#cursorWrittenAt = Date.now();
        }
      } finally {
        this.#cursorWrite = undefined;
      }
    })();
    return this.#cursorWrite;
  }

  /** Empties the file once every event in it is confirmed. The caller guarantees no append is in flight. */
  async compact(): Promise<void> {
    if (this.cursor !== this.size) return;
    await this.fh.truncate(0);
    this.size = 0;
    await this.setCursor(0);
  }

  async close(): Promise<void> {
    if (this.#cursorWrite) await this.persistCursor(true).catch(() => undefined);
    await this.fh.close();
    await rm(join(this.dir, LOCK), { force: true });
  }
}
