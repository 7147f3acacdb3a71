// ReliableUploader: gets finished segments and playlists from local disk into an ObjectStore, whatever storage
// is doing. The live pipeline hands it a file and awaits; everything about retries lives here.
//
// How it behaves, and why:
// - Files wait where they are on local disk (the "spool"); memory holds only bookkeeping (and small playlist
//   bodies). The spool is bounded in bytes: a new upload that would overflow it is refused up front with
//   SpoolFullError and its file left in place — refusing new work is recoverable, silently dropping queued
//   segments is not.
// - One key is stored strictly in call order (playlist v2 never overwritten by a late v1); different keys go
//   in parallel up to `concurrency`.
// - Storage health is one shared state. After a failure the uploader is "down": it sends one probe at a time,
//   spaced by exponential backoff with jitter, instead of N queued files each hammering a dead endpoint. The
//   first success flips it "up" and every waiting file goes at full concurrency at once, so recovery is not
//   held back by per-file timers from the outage.
// - Each file also has its own backoff, so one object that keeps failing (while storage is otherwise fine)
//   does not block the others behind it; and a failure storage answered with a 4xx (other than 408/429) is
//   about that object, so it does not switch the whole uploader into "down" mode.
// - Only failures retrying cannot fix reject: bad key, local file gone, spool full, closed, or UPLOAD_MAX_ATTEMPTS.
// - With a journal folder (UPLOAD_JOURNAL_DIR), every accepted upload is written down (key, local path or the
//   small body, metadata) before its first attempt and crossed off once settled, so a node that crashes or is
//   restarted during an outage picks its waiting files up again with recover() instead of orphaning them.

import { EventEmitter } from "node:events";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { backoffDelay } from "../../../shared/backoff.ts";
import { DEFAULT_UPLOADER_CONFIG, type UploaderConfig } from "./config.ts";
import { isRetryable, isStorageWide, LocalFileError, SpoolFullError, StorageError, UploaderClosedError } from "./errors.ts";
import { assertObjectKey } from "./keys.ts";
import type { ObjectStore, PutBody, Uploader, UploaderEvents, UploaderStats, UploadMeta } from "./types.ts";

interface Job {
  seq: number;
  key: string;
  body: { file: string } | Uint8Array | string;
  localPath: string | undefined;
  size: number;
  meta: UploadMeta;
  acceptedAt: number;
  attempts: number;
  /** not before this time (its own backoff) */
  notBefore: number;
  inFlight: AbortController | undefined;
  resolve: () => void;
  reject: (error: Error) => void;
  /** earlier waiting jobs of the same key this one replaced (UploadMeta.replaceQueued): settled with it */
  replaced: Job[];
  /** its journal entry's file name, once written (undefined without a journal) */
  journal: string | undefined;
  /** false until the journal entry is on disk: only then may it be attempted */
  ready: boolean;
}

/** What a journal entry holds: enough to redo the upload after a restart. */
interface JournalEntry {
  v: 1;
  key: string;
  localPath?: string;
  text?: string;
  base64?: string;
  meta: UploadMeta;
}

export interface ReliableUploaderDeps {
  /** [0,1) source for jitter (tests) */
  random?: () => number;
}

export class ReliableUploader extends EventEmitter<UploaderEvents> implements Uploader {
  readonly store: ObjectStore;
  readonly config: UploaderConfig;
  readonly #random: () => number;
  #seq = 0;
  /** per key: its jobs in call order; only the head may run */
  readonly #chains = new Map<string, Job[]>();
  #inFlight = 0;
  #pendingCount = 0;
  #pendingBytes = 0;
  #storageUp = true;
  /** consecutive failed attempts across all jobs: drives the probe spacing while down */
  #streak = 0;
  #nextProbeAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #closed = false;
  #closing = false;
  /** drain() waiters: called with true when all is stored, false when close() ended the wait */
  readonly #idle = new Set<(stored: boolean) => void>();
  #uploaded = 0;
  #failures = 0;
  #bytesOut = 0;
  #journalSeq = 0;
  /** journal writes under way: close() waits for them, so everything accepted is written down */
  readonly #journalWrites = new Set<Promise<void>>();
  readonly #journalTag = randomBytes(4).toString("hex");

  constructor(store: ObjectStore, config: Partial<UploaderConfig> = {}, deps: ReliableUploaderDeps = {}) {
    super();
    this.store = store;
    this.config = { ...DEFAULT_UPLOADER_CONFIG, ...config };
    this.#random = deps.random ?? Math.random;
  }

  async upload(key: string, localPath: string, meta: UploadMeta = {}): Promise<void> {
    let size: number;
    try {
      assertObjectKey(key);
      const info = await stat(localPath).catch((error: unknown) => {
        throw new LocalFileError(localPath, error);
      });
      if (!info.isFile()) throw new LocalFileError(localPath, new Error("not a regular file"));
      size = info.size;
    } catch (error) {
      this.emit("rejected", { key, error: error as Error });
      throw error;
    }
    return this.#accept(key, { file: localPath }, localPath, size, meta);
  }

  async uploadBody(key: string, body: Uint8Array | string, meta: UploadMeta = {}): Promise<void> {
    try {
      assertObjectKey(key);
    } catch (error) {
      this.emit("rejected", { key, error: error as Error });
      throw error;
    }
    // Copy bytes: the caller may reuse its buffer while we are still retrying.
    const owned = typeof body === "string" ? body : new Uint8Array(body);
    const size = typeof owned === "string" ? Buffer.byteLength(owned) : owned.byteLength;
    return this.#accept(key, owned, undefined, size, meta);
  }

  #accept(key: string, body: Job["body"], localPath: string | undefined, size: number, meta: UploadMeta, journalName?: string): Promise<void> {
    if (this.#closing) {
      const error = new UploaderClosedError(key, localPath);
      this.emit("rejected", { key, error });
      return Promise.reject(error);
    }
    const chain = this.#chains.get(key) ?? [];
    // Waiting (not running) versions this upload replaces free their spool bytes, so count them out first.
    const replaceable = meta.replaceQueued ? chain.filter((j) => !j.inFlight) : [];
    const freed = replaceable.reduce((n, j) => n + j.size, 0);
    // Recovered uploads (journalName given) are on disk already: refusing them would not free anything.
    if (journalName === undefined && this.#pendingBytes - freed + size > this.config.spoolMaxBytes) {
      const error = new SpoolFullError(key, size, this.#pendingBytes, this.config.spoolMaxBytes);
      this.emit("rejected", { key, error });
      return Promise.reject(error);
    }
    return new Promise<void>((resolve, reject) => {
      const job: Job = {
        seq: ++this.#seq,
        key,
        body,
        localPath,
        size,
        meta,
        acceptedAt: performance.now(),
        attempts: 0,
        notBefore: 0,
        inFlight: undefined,
        resolve,
        reject,
        replaced: [],
        journal: journalName,
        ready: !this.config.journalDir || journalName !== undefined,
      };
      if (replaceable.length > 0) {
        // Replaced jobs leave the chain and settle when this one does (their content is superseded by it).
        job.replaced = replaceable.flatMap((j) => [j, ...j.replaced]);
        for (const j of replaceable) {
          chain.splice(chain.indexOf(j), 1);
          j.replaced = [];
          this.#pendingCount -= 1;
          this.#pendingBytes -= j.size;
        }
      }
      chain.push(job);
      this.#chains.set(key, chain);
      this.#pendingCount += 1;
      this.#pendingBytes += size;
      // The job holds its place in the key's order now (synchronously); it may start once it is written down.
      if (!job.ready) {
        const write = this.#writeJournal(job).then(() => {
          this.#journalWrites.delete(write);
          this.#pump();
        });
        this.#journalWrites.add(write);
      }
      this.#pump();
    });
  }

  async #writeJournal(job: Job): Promise<void> {
    const dir = this.config.journalDir;
    if (!dir) return;
    const entry: JournalEntry = { v: 1, key: job.key, meta: job.meta };
    if (job.localPath) entry.localPath = job.localPath;
    else if (typeof job.body === "string") entry.text = job.body;
    else if (job.body instanceof Uint8Array) entry.base64 = Buffer.from(job.body).toString("base64");
    // Names sort in acceptance order across restarts: time first, then a per-process counter.
    const name = `${Date.now().toString().padStart(15, "0")}-${this.#journalTag}-${(++this.#journalSeq).toString().padStart(9, "0")}.json`;
    try {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, `.${name}.tmp`), JSON.stringify(entry));
      await rename(join(dir, `.${name}.tmp`), join(dir, name));
      job.journal = name;
    } catch (error) {
      // A journal that cannot be written weakens crash safety; it must not stop the upload itself.
      this.emit("failed", { key: job.key, attempt: 0, error: new StorageError(`upload journal not written (${(error as Error).message}); continuing without it`, "JOURNAL"), retryInMs: 0 });
    }
    job.ready = true;
  }

  async #crossOff(jobs: Job[]): Promise<void> {
    const dir = this.config.journalDir;
    if (!dir) return;
    await Promise.all(jobs.map((j) => (j.journal ? unlink(join(dir, j.journal)).catch(() => undefined) : undefined)));
  }

  /**
   * Re-queues what a previous run of the node accepted but did not store (needs UPLOAD_JOURNAL_DIR). Call it
   * once at start, before new uploads, so recovered versions of a key go before new ones. Entries whose local
   * file is gone are dropped (reported as "rejected"). Outcomes are reported through the usual events.
   */
  async recover(): Promise<{ recovered: number; dropped: number }> {
    const dir = this.config.journalDir;
    if (!dir) return { recovered: 0, dropped: 0 };
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => n.endsWith(".json") && !n.startsWith(".") && !n.includes(`-${this.#journalTag}-`)).sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { recovered: 0, dropped: 0 };
      throw error;
    }
    let recovered = 0;
    let dropped = 0;
    for (const name of names) {
      const drop = async (error: Error, key: string) => {
        dropped++;
        await unlink(join(dir, name)).catch(() => undefined);
        this.emit("rejected", { key, error });
      };
      let entry: JournalEntry;
      try {
        entry = JSON.parse(await readFile(join(dir, name), "utf8")) as JournalEntry;
        assertObjectKey(entry.key);
      } catch (error) {
        await drop(new StorageError(`unreadable upload journal entry ${name}: ${(error as Error).message}`, "JOURNAL"), "?");
        continue;
      }
      let body: Job["body"];
      let size: number;
      if (entry.localPath) {
        try {
          size = (await stat(entry.localPath)).size;
        } catch (error) {
          await drop(new LocalFileError(entry.localPath, error), entry.key);
          continue;
        }
        body = { file: entry.localPath };
      } else if (entry.text !== undefined) {
        body = entry.text;
        size = Buffer.byteLength(entry.text);
      } else {
        body = new Uint8Array(Buffer.from(entry.base64 ?? "", "base64"));
        size = body.byteLength;
      }
      recovered++;
      // Nobody awaits these: success and failure are reported through the events.
      this.#accept(entry.key, body, entry.localPath, size, entry.meta ?? {}, name).catch(() => undefined);
    }
    return { recovered, dropped };
  }

  /** Starts whatever may start now, and arms one timer for the earliest moment something else may. */
  #pump(): void {
    if (this.#closing) return;
    const limit = this.#storageUp ? this.config.concurrency : 1;
    while (this.#inFlight < limit) {
      const now = performance.now();
      if (!this.#storageUp && now < this.#nextProbeAt) return this.#wakeAt(this.#nextProbeAt);
      let next: Job | undefined;
      let earliest = Infinity;
      for (const chain of this.#chains.values()) {
        const head = chain[0];
        if (!head || head.inFlight || !head.ready) continue;
        if (head.notBefore > now) earliest = Math.min(earliest, head.notBefore);
        else if (!next || head.seq < next.seq) next = head;
      }
      if (!next) {
        if (earliest < Infinity) this.#wakeAt(earliest);
        return;
      }
      void this.#attempt(next);
    }
  }

  #wakeAt(at: number): void {
    if (this.#timer && this.#timerAt <= at) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = Infinity;
        this.#pump();
      },
      Math.max(0, at - performance.now()),
    );
  }

  async #attempt(job: Job): Promise<void> {
    const controller = new AbortController();
    job.inFlight = controller;
    job.attempts += 1;
    this.#inFlight += 1;
    const timeout = setTimeout(
      () => controller.abort(new StorageError(`upload attempt for ${job.key} timed out after ${this.config.attemptTimeoutMs} ms`, "ATTEMPT_TIMEOUT")),
      this.config.attemptTimeoutMs,
    );
    const started = performance.now();
    let error: Error | undefined;
    try {
      // put() may not honour the signal everywhere (fs copyFile): race it, so a hung attempt still ends.
      await Promise.race([
        this.store.put(job.key, job.body as PutBody, { contentType: job.meta.contentType, cacheControl: job.meta.cacheControl, signal: controller.signal }),
        new Promise<never>((_, reject) => controller.signal.addEventListener("abort", () => reject(controller.signal.reason as Error), { once: true })),
      ]);
    } catch (e) {
      error = e instanceof Error ? e : new Error(String(e));
    } finally {
      clearTimeout(timeout);
      this.#inFlight -= 1;
      job.inFlight = undefined;
    }
    if (this.#closed) return; // close() already settled this job
    if (!error) await this.#stored(job, performance.now() - started);
    else this.#failed(job, error);
    this.#pump();
  }

  async #stored(job: Job, attemptMs: number): Promise<void> {
    this.#markUp();
    this.#remove(job);
    this.#uploaded += 1;
    this.#bytesOut += job.size;
    if (!(job.meta.keepLocal ?? this.config.keepLocal)) {
      await Promise.all([job, ...job.replaced].map((j) => (j.localPath ? unlink(j.localPath).catch(() => undefined) : undefined)));
    }
    await this.#crossOff([job, ...job.replaced]);
    this.emit("uploaded", { key: job.key, bytes: job.size, latencyMs: performance.now() - job.acceptedAt, attempts: job.attempts, attemptMs });
    for (const j of [job, ...job.replaced]) j.resolve();
    this.#checkIdle();
  }

  #failed(job: Job, error: Error): void {
    this.#failures += 1;
    const retryable = isRetryable(error) && !(this.config.maxAttempts > 0 && job.attempts >= this.config.maxAttempts);
    if (!retryable) {
      this.#remove(job);
      const final =
        isRetryable(error) && this.config.maxAttempts > 0
          ? new StorageError(`giving up on ${job.key} after ${job.attempts} attempts (UPLOAD_MAX_ATTEMPTS): ${error.message}`, "GAVE_UP", { cause: error })
          : error;
      void this.#crossOff([job, ...job.replaced]);
      this.emit("failed", { key: job.key, attempt: job.attempts, error: final, retryInMs: -1 });
      for (const j of [job, ...job.replaced]) j.reject(final);
      this.#checkIdle();
      return;
    }
    const now = performance.now();
    const options = { baseMs: this.config.retryBaseMs, maxMs: this.config.retryMaxMs, random: this.#random };
    if (isStorageWide(error)) {
      this.#streak += 1;
      if (this.#storageUp) {
        this.#storageUp = false;
        this.emit("storage", { up: false, error });
      }
      this.#nextProbeAt = now + backoffDelay(this.#streak, options);
    }
    job.notBefore = now + backoffDelay(job.attempts, options);
    const retryAt = this.#storageUp ? job.notBefore : Math.max(job.notBefore, this.#nextProbeAt);
    this.emit("failed", { key: job.key, attempt: job.attempts, error, retryInMs: Math.round(retryAt - now) });
  }

  #markUp(): void {
    this.#streak = 0;
    this.#nextProbeAt = 0;
    if (this.#storageUp) return;
    this.#storageUp = true;
    // Waits earned during the outage say nothing about storage now: everyone may go.
    for (const chain of this.#chains.values()) for (const job of chain) job.notBefore = 0;
    this.emit("storage", { up: true });
  }

  #remove(job: Job): void {
    const chain = this.#chains.get(job.key);
    if (chain) {
      const i = chain.indexOf(job);
      if (i >= 0) chain.splice(i, 1);
      if (chain.length === 0) this.#chains.delete(job.key);
    }
    this.#pendingCount -= 1;
    this.#pendingBytes -= job.size;
  }

  #checkIdle(): void {
    if (this.#pendingCount > 0) return;
    for (const done of this.#idle) done(true);
    this.#idle.clear();
  }

  drain(timeoutMs?: number): Promise<boolean> {
    if (this.#pendingCount === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (stored: boolean) => {
        clearTimeout(timer);
        resolve(stored);
      };
      this.#idle.add(done);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.#idle.delete(done);
          resolve(false);
        }, timeoutMs);
      }
    });
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    // First refuse new work and start no attempt, and let journal writes land (everything accepted is then
    // written down for recover()); only then give up on what is pending.
    this.#closing = true;
    await Promise.all(this.#journalWrites);
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const chain of this.#chains.values()) {
      for (const job of chain) {
        job.inFlight?.abort(new UploaderClosedError(job.key, job.localPath));
        for (const j of [job, ...job.replaced]) j.reject(new UploaderClosedError(j.key, j.localPath));
      }
    }
    this.#chains.clear();
    this.#pendingCount = 0;
    this.#pendingBytes = 0;
    for (const done of this.#idle) done(false); // what they waited for was not stored
    this.#idle.clear();
  }

  ping(): Promise<void> {
    return this.store.ping();
  }

  stats(): UploaderStats {
    return {
      pending: this.#pendingCount,
      pendingBytes: this.#pendingBytes,
      inFlight: this.#inFlight,
      uploaded: this.#uploaded,
      failures: this.#failures,
      bytesOut: this.#bytesOut,
      storageUp: this.#storageUp,
    };
  }
}
