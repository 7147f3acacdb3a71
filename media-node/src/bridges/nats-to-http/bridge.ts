// NATS -> HTTP bridge: a durable JetStream pull consumer whose events are POSTed, signed, to the edge.
//
// At least once, by construction: an event is acked only after the edge's 2xx (or after it is safely in the
// dead-letter stream). Anything else (a 5xx, a timeout, a dead replica, a NATS restart that eats an ack) ends in
// redelivery, and the edge drops the repeat by event id. Any number of replicas share the one durable consumer.
//
// Concurrency is bounded by pulling only as many events as there are free slots, so nothing waits in a client
// buffer while its ack timer runs. Each event runs its own retry loop (handle); its attempts go through the
// batcher, which sends whatever events are due together as one signed batch and hands each its own verdict.

import { headers as natsHeaders, type Consumer, type JetStreamClient, type JsMsg, type NatsConnection } from "nats";
import { type Envelope, parseEventJson } from "../../../../shared/envelope.ts";
import { fromUtf8 } from "../../../../shared/encoding.ts";
import { backoffDelay } from "../../../../shared/backoff.ts";
import { connectNats } from "../../bus/connect.ts";
import { inboxPrefix } from "../../bus/nats-permissions.ts";
import { ensureDurableConsumer, ensureEventStreams } from "../../bus/streams.ts";
import { DEAD_LETTER_HEADERS, deadLetterSubject } from "../../bus/subjects.ts";
import { natsServersForLog } from "../../settings/nats.ts";
import { createBatcher } from "./batcher.ts";
import type { Decision } from "./classify.ts";
import { createDeliverer } from "./deliver.ts";
import { forwardHeartbeats, type HeartbeatForwarder } from "./heartbeats.ts";
import type { BridgeMetrics } from "./metrics.ts";
import type { NatsToHttpConfig } from "./config.ts";

/** How long one pull request waits for events when there are none (it returns as soon as it has its count). */
const PULL_EXPIRES_MS = 30_000;

export interface NatsToHttpBridge {
  start(): Promise<void>;
  /** stops pulling, lets in-flight posts finish (up to `graceMs`), hands held events back, closes NATS */
  stop(graceMs?: number): Promise<void>;
  readonly connected: boolean;
}

export function createNatsToHttpBridge(cfg: NatsToHttpConfig, metrics: BridgeMetrics, log: (m: string) => void): NatsToHttpBridge {
  let nc: NatsConnection | undefined;
  let js: JetStreamClient | undefined;
  let consumer: Consumer | undefined;
  let running = false;
  let connected = false;
  let loopDone: Promise<void> = Promise.resolve();
  let lagTimer: NodeJS.Timeout | undefined;
  let heartbeats: HeartbeatForwarder | undefined;
  // Heartbeats on their own sockets: a backlog of events never holds the fleet's view back.
  const heartbeatDeliver = createDeliverer({ url: cfg.edgeUrl, secrets: cfg.secrets, timeoutMs: cfg.requestTimeoutMs, maxSockets: 2 });
  const inFlight = new Set<Promise<void>>();
  const held = new Set<JsMsg>();
  let slotFreed: (() => void) | null = null;
  const stopping = new AbortController();
  // Retry delays are capped below the ack wait so a held event's progress signal always comes in time.
  const maxDelay = Math.min(cfg.retryMaxMs, Math.floor(cfg.ackWaitMs / 2));
  const minPull = Math.max(1, Math.floor(cfg.concurrency / 4));
  const deliver = createDeliverer({ url: cfg.edgeUrl, secrets: cfg.secrets, timeoutMs: cfg.requestTimeoutMs, maxSockets: cfg.concurrency });
  let splitLogged = false;
  const send = createBatcher({
    max: cfg.batchMax,
    lingerMs: cfg.batchLingerMs,
    maxRequests: cfg.maxRequests,
    deliver,
    retryStatuses: cfg.retryStatusSet,
    onBatch: (size) => metrics.batchSize.observe(size),
    onSplit: (size, reason) => {
      metrics.batchesSplit.inc();
      // Once: an edge that never takes batches would otherwise log every batch (set BRIDGE_BATCH_MAX=1 there).
      if (!splitLogged) log(`a batch of ${size} was refused whole, sending its events one by one (logged once): ${reason}`);
      splitLogged = true;
    },
  });

  // A retry wait that stop() cuts short. The listener goes when the wait ends, or a long outage (thousands of
  // retries) would pile them up on the signal.
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        stopping.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      stopping.signal.addEventListener("abort", done, { once: true });
    });

  function isSkipped(event: Envelope): boolean {
    return cfg.skipSources.some((s) => event.source === s || event.source.startsWith(`${s}/`));
  }

  async function deadLetter(m: JsMsg, type: string, id: string | undefined, reason: string, status?: number): Promise<void> {
    const h = natsHeaders();
    h.set(DEAD_LETTER_HEADERS.reason, reason.replace(/[\r\n]+/g, " ").slice(0, 1000));
    h.set(DEAD_LETTER_HEADERS.subject, m.subject);
    h.set(DEAD_LETTER_HEADERS.streamSeq, String(m.seq));
    if (status !== undefined) h.set(DEAD_LETTER_HEADERS.status, String(status));
    await js!.publish(deadLetterSubject(type), m.data, { msgID: id ?? `seq-${m.info.stream}-${m.seq}`, headers: h, timeout: 5000 });
  }

  async function settle(m: JsMsg, decision: Decision & { action: "ack" | "dead-letter" }, event: { type: string; id?: string }, status?: number) {
    if (decision.action === "dead-letter") {
      await deadLetter(m, event.type, event.id, decision.reason, status);
      metrics.deadLettered.inc({ type: event.type });
      log(`dead-lettered ${event.id ?? `seq ${m.seq}`} (${event.type}): ${decision.reason}`);
    }
    // Not ackAck: waiting for the server's confirmation would hold the slot for one more round trip and buy
    // nothing, since an ack lost here (NATS restarting) only means one more delivery, dropped at the edge.
    m.ack();
  }

  async function handle(m: JsMsg): Promise<void> {
    const json = fromUtf8(m.data);
    const parsed = parseEventJson(json);
    if (!parsed.ok) {
      // Something put a non-event on an event subject: no retry can fix it.
      await settle(m, { action: "dead-letter", reason: `not a valid event: ${parsed.error}` }, { type: m.subject });
      return;
    }
    const event = parsed.event;
    if (isSkipped(event)) {
      metrics.skipped.inc();
      m.ack();
      return;
    }
    const heldSince = Date.now();
    let attempt = 0;
    held.add(m);
    try {
      while (running) {
        // The first attempt runs on a fresh ack timer (request timeout < ack wait); retries renew it.
        if (attempt > 0) m.working();
        // Waiting for a request slot and then the answer may take a while under load: keep the ack timer fresh
        // meanwhile (only a live replica does), so a busy replica's events are not handed to another.
        const keepAlive = setInterval(() => {
          try {
            m.working();
          } catch {
            /* connection gone (NATS restarting): the ack wait hands the event out again, which is safe */
          }
        }, Math.max(500, Math.floor(cfg.ackWaitMs / 3)));
        const { decision, cause, status } = await send(event.id, json, event.subject).finally(() => clearInterval(keepAlive));
        if (decision.action === "ack") {
          metrics.delivered.inc({ type: event.type });
          metrics.latency.observe(Math.max(0, Date.now() - m.info.timestampNanos / 1e6) / 1000);
          await settle(m, decision, event);
          return;
        }
        if (decision.action === "dead-letter") {
          await settle(m, decision, event, status);
          return;
        }
        metrics.retried.inc({ cause });
        attempt++;
        // Earlier deliveries of this event (other replicas, earlier holds) count towards the backoff too.
        const delay = Math.min(maxDelay, Math.max(decision.minDelayMs ?? 0, backoffDelay(attempt + m.info.deliveryCount - 1, { baseMs: cfg.retryBaseMs, maxMs: maxDelay })));
        if (attempt === 1 && m.info.deliveryCount === 1) log(`retrying ${event.id} (${event.type}): ${decision.reason}`);
        if (Date.now() + delay - heldSince > cfg.holdMs) {
          // Held long enough: give the slot to other events; JetStream hands this one out again after the delay.
          m.nak(delay);
          return;
        }
        m.working();
        await sleep(delay);
      }
      // Shutting down mid-retry: hand it back at once so another replica takes it.
      m.nak();
    } finally {
      held.delete(m);
    }
  }

  function startHandling(m: JsMsg) {
    const p = handle(m)
      .catch((error: Error) => {
        // Dead-letter publish failed (NATS down) or similar: try again after a while.
        log(`handling seq ${m.seq} failed, will retry: ${error.message}`);
        try {
          m.nak(backoffDelay(m.info.deliveryCount, { baseMs: cfg.retryBaseMs, maxMs: maxDelay }));
        } catch {
          /* connection gone: the ack wait brings it back */
        }
      })
      .finally(() => {
        inFlight.delete(p);
        metrics.inFlight.set(inFlight.size);
        slotFreed?.();
      });
    inFlight.add(p);
    metrics.inFlight.set(inFlight.size);
  }

  async function pullLoop(): Promise<void> {
    let failures = 0;
    while (running) {
      // Pull in batches (at least a quarter of the slots) rather than one event per pull request as slots free
      // up one by one: fewer round trips under load, and an idle bridge has every slot free anyway.
      if (cfg.concurrency - inFlight.size < minPull) {
        await new Promise<void>((r) => (slotFreed = r));
        slotFreed = null;
        continue;
      }
      try {
        consumer ??= await js!.consumers.get(cfg.stream, cfg.consumer);
        // A long-lived pull that ends by count (or after PULL_EXPIRES_MS idle): events stream in as they are stored.
        // A short expiry would end pulls all the time, and an event the server sends just as the client gives a
        // pull up is dropped by the client and only comes back after the ack wait (seconds of latency for it).
        const batch = await consumer.fetch({ max_messages: cfg.concurrency - inFlight.size, expires: PULL_EXPIRES_MS });
        for await (const m of batch) {
          startHandling(m);
          metrics.lag.set(m.info.pending);
        }
        failures = 0;
      } catch (error) {
        // NATS restarting, consumer or stream gone (a wiped server): re-declare and pull again.
        consumer = undefined;
        if (failures++ === 0) log(`pull failed, retrying: ${(error as Error).message}`);
        await sleep(backoffDelay(failures, { baseMs: 100, maxMs: 2000 }));
        if (running && nc && !nc.isClosed()) await declare().catch(() => undefined);
      }
    }
  }

  async function declare(): Promise<void> {
    const jsm = await nc!.jetstreamManager();
    await ensureEventStreams(jsm, cfg);
    await ensureDurableConsumer(jsm, { stream: cfg.stream, durable: cfg.consumer, ackWaitMs: cfg.ackWaitMs, maxAckPending: cfg.maxAckPending });
  }

  async function updateLag(): Promise<void> {
    try {
      const info = await (await nc!.jetstreamManager()).consumers.info(cfg.stream, cfg.consumer);
      metrics.lag.set(info.num_pending);
    } catch {
      /* NATS away: the gauge keeps its last value */
    }
  }

  return {
    get connected() {
      return connected;
    },
    async start() {
      log(`connecting to NATS at ${natsServersForLog(cfg.natsUrl)} (waits for it if it is not up yet)`);
      nc = await connectNats(cfg, {
        name: "pulsecast-nats-to-http",
        inboxPrefix: inboxPrefix("nats-to-http"),
        onStatus: (status, detail) => {
          if (status === "disconnect") connected = false;
          if (status === "reconnect") connected = true;
          if (status !== "pingTimer") log(`nats ${status}${detail ? ` ${detail}` : ""}`);
        },
      });
      connected = true;
      js = nc.jetstream();
      await declare();
      running = true;
      loopDone = pullLoop();
      heartbeats = forwardHeartbeats(nc, { queue: cfg.consumer, deliver: heartbeatDeliver, log, onForwarded: (n) => metrics.heartbeats.inc(n) });
      lagTimer = setInterval(() => void updateLag(), 2000);
      lagTimer.unref();
    },
    async stop(graceMs = 10_000) {
      if (!running) return;
      running = false;
      stopping.abort();
      slotFreed?.();
      clearInterval(lagTimer);
      heartbeats?.stop();
      const all = Promise.allSettled([...inFlight]);
      const grace = new Promise((r) => setTimeout(r, graceMs).unref());
      await Promise.race([all, grace]);
      // Whatever is still held goes back to JetStream now rather than after the ack wait.
      for (const m of held) m.nak();
      await Promise.race([loopDone, new Promise((r) => setTimeout(r, 2500).unref())]);
      await nc?.drain().catch(() => nc?.close());
      deliver.close();
      heartbeatDeliver.close();
    },
  };
}
