// The VOD worker of a media node: pulls finished uploads from the job stream (one durable consumer shared by
// every node, work-queue retention) and processes them, `concurrency` at a time.
//
// - One job per pull, never a buffer: a fetched job's ack timer runs from delivery, so a buffered one would
//   time out while it waited behind another.
// - While a job runs its deadline is extended (`working()`) every third of the ack wait; a node that dies or is
//   cut off stops extending it and JetStream hands the job to another node after the ack wait.
// - The ack comes only after every output and the ready event are stored (the event in the node's outbox, which
//   reaches JetStream however long NATS is away).
// - A video deleted while its job runs ends the job without an event (the pipeline removes what it stored).
// - Bad input (unreadable, not audio/video, over a limit) ends at once: `media.failed` and `term()`. Anything
//   else is retried after a delay, and a job is delivered at most `maxAttempts + 1` times: the extra delivery
//   only announces the failure, so a job whose node was lost on its last attempt still ends as media.failed.

import { AckPolicy, DeliverPolicy, type JetStreamManager, type JsMsg, nanos, NatsError, type NatsConnection } from "nats";
import { backoffDelay } from "../../../shared/backoff.ts";
import type { Envelope } from "../../../shared/envelope.ts";
import type { MediaStage } from "../../../shared/events/media.ts";
import { connectNats } from "../bus/connect.ts";
import type { EventSink } from "../bus/event-bus.ts";
import { inboxPrefix } from "../bus/nats-permissions.ts";
import { ensureStream, jobStreamConfig } from "../bus/streams.ts";
import type { Logger } from "../log.ts";
import type { NatsConnectionConfig } from "../settings/nats.ts";
import { parseJob, type VodJob, vodEvent } from "./job.ts";
import { processUpload, VideoDeletedError, type VodPipelineDeps, VodJobError, type VodResult } from "./pipeline.ts";

export interface VodWorkerOptions {
  nodeId: string;
  nats: NatsConnectionConfig & { jobStream: string; duplicateWindowS: number; maxAgeS: number };
  consumer: string;
  /** jobs processed at once on this node */
  concurrency: number;
  ackWaitMs: number;
  maxAttempts: number;
  retryDelayMs: number;
  events: EventSink;
  pipeline: VodPipelineDeps;
  /** object key -> the URL a player uses */
  publicUrl: (key: string) => string;
  log: Logger;
  /** how long one pull waits for a job (shorter only in tests) */
  pullExpiresMs?: number;
}

const CONSUMER_NOT_FOUND = 10014;
/** progress events per job: at most one per second, plus every stage change */
const PROGRESS_INTERVAL_MS = 1000;

/** Creates the shared consumer, or brings its redelivery settings to ours. */
export async function ensureJobConsumer(jsm: JetStreamManager, stream: string, durable: string, opts: { ackWaitMs: number; maxAttempts: number }): Promise<void> {
  const settings = { ack_wait: nanos(opts.ackWaitMs), max_deliver: opts.maxAttempts + 1, max_ack_pending: -1 };
  try {
    await jsm.consumers.info(stream, durable);
  } catch (error) {
    if (!(error instanceof NatsError) || error.api_error?.err_code !== CONSUMER_NOT_FOUND) throw error;
    try {
      await jsm.consumers.add(stream, { durable_name: durable, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, ...settings });
      return;
    } catch (addError) {
      // Another node created it between our info and add: fall through to update.
      if (!(addError instanceof NatsError) || addError.api_error === undefined) throw addError;
    }
  }
  await jsm.consumers.update(stream, durable, settings);
}

export class VodWorker {
  readonly #o: VodWorkerOptions;
  #nc: NatsConnection | undefined;
  #stopped = false;
  #draining = false;
  #loops: Promise<void>[] = [];
  readonly #running = new Map<string, AbortController>();
  readonly #handling = new Set<Promise<void>>();

  constructor(options: VodWorkerOptions) {
    this.#o = options;
  }

  /** jobs in progress on this node */
  get active(): number {
    return this.#running.size;
  }

  async start(): Promise<void> {
    const o = this.#o;
    const nc = await connectNats(o.nats, { name: `vod-worker-${o.nodeId}`, inboxPrefix: inboxPrefix("media-node") });
    this.#nc = nc;
    const jsm = await nc.jetstreamManager();
    await ensureStream(jsm, jobStreamConfig(o.nats));
    await ensureJobConsumer(jsm, o.nats.jobStream, o.consumer, o);
    for (let i = 0; i < o.concurrency; i++) this.#loops.push(this.#loop(i));
    o.log.info("vod worker pulling jobs", { stream: o.nats.jobStream, consumer: o.consumer, concurrency: o.concurrency });
  }

  /** jobs this node runs at once */
  get concurrency(): number {
    return this.#o.concurrency;
  }

  /**
   * Draining: takes no new job; resolves true once the jobs in progress are done, or false after `timeoutMs`
   * (stop() then hands what is left back to the queue for another node).
   */
  async drain(timeoutMs: number): Promise<boolean> {
    this.#draining = true;
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([Promise.all(this.#handling).then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)))]);
    clearTimeout(timer);
    return done;
  }

  /** Stops pulling; jobs in progress are abandoned and handed back at once (nak) for another node. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const c of this.#running.values()) c.abort();
    // Handlers nak their job on the open connection; then closing it ends the pulls still waiting.
    await Promise.all(this.#handling);
    await this.#nc?.drain().catch(() => this.#nc?.close());
    await Promise.all(this.#loops);
  }

  async #loop(slot: number): Promise<void> {
    const o = this.#o;
    const js = this.#nc!.jetstream();
    let failures = 0;
    let consumer: Awaited<ReturnType<typeof js.consumers.get>> | undefined;
    while (!this.#stopped && !this.#draining) {
      let msg: JsMsg | null;
      try {
        consumer ??= await js.consumers.get(o.nats.jobStream, o.consumer);
        msg = await consumer.next({ expires: o.pullExpiresMs ?? 30_000 });
        failures = 0;
      } catch (error) {
        if (this.#stopped) break;
        consumer = undefined;
        // NATS away or the consumer being re-declared: wait a little, never spin.
        o.log.warn("pulling a vod job failed; retrying", { slot, error });
        await new Promise((r) => setTimeout(r, backoffDelay(++failures, { baseMs: 250, maxMs: 10_000 })));
        continue;
      }
      if (!msg) continue;
      if (this.#stopped || this.#draining) {
        msg.nak();
        break;
      }
      const handling = this.#handle(msg);
      this.#handling.add(handling);
      await handling.finally(() => this.#handling.delete(handling));
    }
  }

  async #handle(msg: JsMsg): Promise<void> {
    const o = this.#o;
    const delivery = msg.info.redeliveryCount;
    const parsed = parseJob(msg.string());
    if (!parsed.ok) {
      o.log.warn("vod job refused", { reason: parsed.reason, seq: msg.seq });
      if (parsed.videoId && parsed.ownerId) await this.#failed({ videoId: parsed.videoId, ownerId: parsed.ownerId, roomId: undefined }, undefined, parsed.reason).catch(() => undefined);
      msg.term();
      return;
    }
    const job = parsed.job;
    const log = o.log.child({ videoId: job.videoId, delivery });
    if (delivery > o.maxAttempts) {
      log.error("vod job gave up: every attempt ended without a result");
      await this.#settle(msg, () => this.#failed(job, undefined, `processing did not finish in ${o.maxAttempts} attempts (a media node stopped while processing it)`), "term");
      return;
    }
    const abort = new AbortController();
    this.#running.set(job.eventId, abort);
    const heartbeat = setInterval(() => msg.working(), Math.max(500, Math.floor(o.ackWaitMs / 3)));
    const started = Date.now();
    log.info("vod job started");
    try {
      const result = await processUpload(job, o.pipeline, this.#hooks(job), abort.signal);
      await this.#settle(msg, () => this.#ready(job, result), "ack");
      log.info("vod job done", { ms: Date.now() - started, durationS: result.durationS });
    } catch (error) {
      if (error instanceof VideoDeletedError) {
        // Nothing to announce about a video that no longer exists; what the job stored is removed already.
        log.info("vod job dropped: the video was deleted", { ms: Date.now() - started });
        msg.term();
        return;
      }
      const e = error instanceof VodJobError ? error : new VodJobError("transcode", (error as Error).message, false);
      if (this.#stopped) {
        log.info("vod job handed back: node stopping");
        msg.nak();
      } else if (e.permanent || delivery >= o.maxAttempts) {
        log.warn("vod job failed", { stage: e.stage, reason: e.message, permanent: e.permanent });
        await this.#settle(msg, () => this.#failed(job, e.stage, e.message), "term");
      } else {
        log.warn("vod job failed; will retry", { stage: e.stage, reason: e.message, retryInMs: o.retryDelayMs });
        msg.nak(o.retryDelayMs);
      }
    } finally {
      clearInterval(heartbeat);
      this.#running.delete(job.eventId);
    }
  }

  /** Publishes the outcome (durable in the outbox), then acks or terms; a publish that fails leaves the job to be retried. */
  async #settle(msg: JsMsg, publish: () => Promise<void>, then: "ack" | "term"): Promise<void> {
    try {
      await publish();
    } catch (error) {
      this.#o.log.error("vod outcome not published; the job will be offered again", { error });
      msg.nak(this.#o.retryDelayMs);
      return;
    }
    if (then === "term") msg.term();
    else await msg.ackAck().catch((error: unknown) => this.#o.log.warn("vod job ack not confirmed; a redelivery will find the stored result", { error }));
  }

  #hooks(job: VodJob) {
    const o = this.#o;
    let last = 0;
    let lastStage: MediaStage | undefined;
    const ids = { nodeId: o.nodeId, videoId: job.videoId };
    const base = { mediaId: job.videoId, ownerId: job.ownerId, ...(job.roomId ? { roomId: job.roomId } : {}) };
    return {
      progress: (stage: MediaStage, percent: number) => {
        const now = Date.now();
        if (stage === lastStage && now - last < PROGRESS_INTERVAL_MS) return;
        last = now;
        lastStage = stage;
        const event = vodEvent("media.progress", { ...base, stage, percent: Math.round(percent * 10) / 10 }, ids);
        // Progress is best effort: a refused one (outbox full) must not stop the job.
        o.events.publish(event).catch((error: unknown) => o.log.warn("progress event not published", { error }));
      },
      playable: async ({ masterKey, renditions }: { masterKey: string; renditions: VodResult["renditions"] }) => {
        await o.events.publish(vodEvent("media.playable", { ...base, playbackUrl: o.publicUrl(masterKey), masterKey, renditions }, ids));
      },
    };
  }

  async #ready(job: VodJob, r: VodResult): Promise<void> {
    const o = this.#o;
    const event: Envelope<"media.ready"> = vodEvent(
      "media.ready",
      {
        mediaId: job.videoId,
        ownerId: job.ownerId,
        ...(job.roomId ? { roomId: job.roomId } : {}),
        playbackUrl: o.publicUrl(r.keys.master),
        durationS: r.durationS,
        ...(r.keys.poster ? { posterUrl: o.publicUrl(r.keys.poster) } : {}),
        ...(r.keys.storyboard ? { thumbnailsUrl: o.publicUrl(r.keys.storyboard) } : {}),
        renditions: r.renditions,
        keys: r.keys,
      },
      { nodeId: o.nodeId, videoId: job.videoId },
    );
    await o.events.publish(event);
  }

  async #failed(job: Pick<VodJob, "videoId" | "ownerId" | "roomId">, stage: MediaStage | undefined, reason: string): Promise<void> {
    const o = this.#o;
    const data = { mediaId: job.videoId, ownerId: job.ownerId, ...(job.roomId ? { roomId: job.roomId } : {}), ...(stage ? { stage } : {}), reason: reason.slice(0, 2000) };
    await o.events.publish(vodEvent("media.failed", data, { nodeId: o.nodeId, videoId: job.videoId }));
  }
}
