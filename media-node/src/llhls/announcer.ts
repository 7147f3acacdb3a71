// Announcements of a low-latency broadcast to the edge: signed HTTP POSTs (Standard Webhooks, EDGE_INGRESS_SECRET)
// to `/hooks/llhls/<streamId>/announce`, which the edge hands to the stream's object.
//
// A part every third of a second per rendition must reach the edge in milliseconds, so this does not go
// through the event bus (built for at-least-once lifecycle events, with its own batching and linger); it is one
// persistent HTTP connection (fetch keeps it alive) and one request at a time per broadcast, in order. What is
// announced while a request is in flight leaves together in the next one, so a slow edge gets fewer, larger
// requests rather than a queue of small ones. A failed request is sent again (announcements are idempotent at
// the edge) until it goes through or the broadcast's channel is closed; a refusal (4xx) is logged and dropped,
// since sending the same thing again cannot help.

import { llAnnounce, type LlAnnounce, type LlUpdate, MAX_ANNOUNCE_BYTES } from "../../../shared/llhls/announce.ts";
import { signWebhook } from "../../../shared/signing/webhooks.ts";
import type { Logger } from "../log.ts";

/** Where a broadcast's announcements go (tests give their own). */
export interface AnnounceSink {
  /** the updates reach the edge after every earlier one; resolves once the edge took them */
  send(updates: LlUpdate[]): Promise<void>;
  /** no more sending; what is queued is dropped (its promises reject) */
  close(): void;
}

export interface AnnouncerOptions {
  edgeUrl: string;
  secrets: string[];
  timeoutMs: number;
  log: Logger;
  /** retries back off from this (doubling, at most 1 s): a part is stale within a second anyway */
  retryBaseMs?: number;
}

export class AnnounceRefusedError extends Error {
  override name = "AnnounceRefusedError";
}

/** One broadcast's channel to the edge. */
export class EdgeAnnouncer implements AnnounceSink {
  readonly #opts: AnnouncerOptions;
  readonly #streamId: string;
  readonly #broadcastId: string;
  readonly #endpoint: string;
  #queue: { update: LlUpdate; resolve: () => void; reject: (e: Error) => void }[] = [];
  #pumping = false;
  #closed = false;
  #seq = 0;
  /** the last request's round trip, ms (for logs and the bench) */
  lastRoundTripMs = 0;

  constructor(opts: AnnouncerOptions, streamId: string, broadcastId: string) {
    this.#opts = opts;
    this.#streamId = streamId;
    this.#broadcastId = broadcastId;
    this.#endpoint = `${opts.edgeUrl.replace(/\/+$/, "")}/hooks/llhls/${encodeURIComponent(streamId)}/announce`;
  }

  send(updates: LlUpdate[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("announcer closed"));
    const all = updates.map((update) => new Promise<void>((resolve, reject) => this.#queue.push({ update, resolve, reject })));
    void this.#pump();
    return Promise.all(all).then(() => {});
  }

  close(): void {
    this.#closed = true;
    const left = this.#queue.splice(0);
    for (const q of left) q.reject(new Error("announcer closed"));
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const batch = this.#queue.splice(0, 512);
        const body: LlAnnounce = { streamId: this.#streamId, broadcastId: this.#broadcastId, seq: ++this.#seq, updates: batch.map((b) => b.update) };
        try {
          await this.#post(body);
          for (const b of batch) b.resolve();
        } catch (error) {
          for (const b of batch) b.reject(error as Error);
        }
      }
    } finally {
      this.#pumping = false;
    }
  }

  async #post(announce: LlAnnounce): Promise<void> {
    // The schema both sides check: a malformed announcement is our bug, never sent.
    const checked = llAnnounce.safeParse(announce);
    if (!checked.success) throw new Error(`announcement does not match the schema: ${checked.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    const text = JSON.stringify(announce);
    if (text.length > MAX_ANNOUNCE_BYTES) throw new Error(`announcement of ${text.length} bytes is over ${MAX_ANNOUNCE_BYTES}`);
    const base = this.#opts.retryBaseMs ?? 50;
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw new Error("announcer closed");
      const started = performance.now();
      let status = 0;
      let detail = "";
      try {
        const headers = await signWebhook(this.#opts.secrets, `${this.#broadcastId}.${announce.seq}`, text);
        const res = await fetch(this.#endpoint, {
          method: "POST",
          headers: { ...headers, "content-type": "application/json" },
          body: text,
          signal: AbortSignal.timeout(this.#opts.timeoutMs),
        });
        status = res.status;
        detail = status === 200 ? "" : (await res.text().catch(() => "")).slice(0, 300);
        if (status === 200) await res.body?.cancel().catch(() => {});
      } catch (error) {
        detail = (error as Error).message;
      }
      this.lastRoundTripMs = performance.now() - started;
      if (status === 200) return;
      if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
        this.#opts.log.error("the edge refused a low-latency announcement", { streamId: this.#streamId, status, detail });
        throw new AnnounceRefusedError(`the edge answered ${status}: ${detail}`);
      }
      if (attempt === 0 || attempt % 20 === 0) this.#opts.log.warn("low-latency announcement failed; retrying", { streamId: this.#streamId, status, detail, attempt });
      await new Promise((r) => setTimeout(r, Math.min(1000, base * 2 ** Math.min(attempt, 10))));
    }
  }
}
