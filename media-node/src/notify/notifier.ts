// The email notifier: a durable JetStream consumer of `notification.email` (the edge's inboxes ask for one email
// or one digest per event), which renders each, hands it to SMTP, and answers every notification in it with one
// `notification.sent` (channel `email`) whose id derives from the user and notification, so a repeated answer is
// stored once.
//
// Exactly once, as far as one process can tell: an email id already sent by this process is never sent again
// (a redelivery only repeats the answers), and an email is acked only after its answers are stored. What remains:
// a process that dies between the SMTP server's acceptance and the ack leaves the request to be redelivered, and
// another replica sends it again (the same Message-ID, which lets mail clients fold the two).
import type { JsMsg, NatsConnection } from "nats";
import { backoffDelay } from "../../../shared/backoff.ts";
import { type Envelope, makeEvent, parseEventJson } from "../../../shared/envelope.ts";
import { fromUtf8 } from "../../../shared/encoding.ts";
import { sentEventId } from "../../../shared/notification-ids.ts";
import { connectNats } from "../bus/connect.ts";
import { inboxPrefix } from "../bus/nats-permissions.ts";
import { publishEvent } from "../bus/publish.ts";
import { ensureDurableConsumer, ensureEventStreams } from "../bus/streams.ts";
import type { NotifierConfig } from "../settings/processes.ts";
import { natsServersForLog } from "../settings/nats.ts";
import { type EmailRequest, renderEmail } from "./render.ts";
import { classifySendError, type EmailTransport } from "./transport.ts";

const SUBJECT = "notification.email";
/** Email ids this process sent, newest last; enough for any redelivery within the ack wait. */
const SENT_MEMORY = 50_000;

export interface Notifier {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** emails handed to SMTP since start (tests, metrics) */
  readonly sent: number;
}

type Answer = { outcome: "delivered" | "failed"; reason?: string };

export function createNotifier(cfg: NotifierConfig, transport: EmailTransport, log: (m: string) => void): Notifier {
  let nc: NatsConnection | undefined;
  let running = false;
  let loop: Promise<void> | undefined;
  const inFlight = new Set<Promise<void>>();
  /** emailId -> the answer already decided (sent, or failed for good) */
  const decided = new Map<string, Answer>();
  let sent = 0;

  function remember(emailId: string, answer: Answer) {
    decided.set(emailId, answer);
    if (decided.size > SENT_MEMORY) decided.delete(decided.keys().next().value!);
  }

  async function answer(req: EmailRequest, a: Answer): Promise<void> {
    const js = nc!.jetstream();
    await Promise.all(
      req.notifications.map(async (n) => {
        const event = makeEvent(
          "notification.sent",
          { notificationId: n.notificationId, userId: req.userId, channel: "email", outcome: a.outcome, emailId: req.emailId, ...(a.reason && { reason: a.reason.slice(0, 500) }) },
          { source: "notifier", subject: `user/${req.userId}`, id: await sentEventId(req.userId, n.notificationId, "email") },
        );
        await publishEvent(js, event, { timeoutMs: cfg.publishTimeoutMs });
      }),
    );
  }

  async function handle(m: JsMsg): Promise<void> {
    const parsed = parseEventJson(fromUtf8(m.data));
    if (!parsed.ok || parsed.event.type !== "notification.email") {
      // The bridge checks every event against the schema before it is stored, so this is a version mismatch.
      log(`dropping an unreadable email request (stream seq ${m.seq}): ${parsed.ok ? `type ${parsed.event.type}` : parsed.error}`);
      m.term();
      return;
    }
    const req = (parsed.event as Envelope<"notification.email">).data;
    try {
      let decision = decided.get(req.emailId);
      if (!decision) {
        try {
          await transport.send(renderEmail(req));
          sent++;
          decision = { outcome: "delivered" };
        } catch (error) {
          const failure = classifySendError(error);
          const attempt = m.info.deliveryCount;
          if (failure.kind === "retry" && attempt < cfg.maxAttempts) {
            const delay = backoffDelay(attempt, { baseMs: cfg.retryBaseMs, maxMs: cfg.retryMaxMs });
            log(`email ${req.emailId} not sent (attempt ${attempt} of ${cfg.maxAttempts}), retry in ${delay} ms: ${failure.reason}`);
            m.nak(delay);
            return;
          }
          log(`email ${req.emailId} failed for good: ${failure.reason}`);
          decision = { outcome: "failed", reason: failure.kind === "retry" ? `gave up after ${attempt} attempts: ${failure.reason}` : failure.reason };
        }
        remember(req.emailId, decision);
      }
      await answer(req, decision);
      m.ack();
    } catch (error) {
      // The answers could not be stored (NATS away): the request comes back, and only the answers are repeated.
      log(`email ${req.emailId}: answers not stored, will retry: ${(error as Error).message}`);
      m.nak(1000);
    }
  }

  async function pullLoop(): Promise<void> {
    let failures = 0;
    while (running) {
      try {
        const consumer = await nc!.jetstream().consumers.get(cfg.edgeStream, cfg.consumer);
        const messages = await consumer.consume({ max_messages: cfg.concurrency });
        failures = 0;
        for await (const m of messages) {
          if (!running) {
            m.nak();
            break;
          }
          const p = handle(m).finally(() => inFlight.delete(p));
          inFlight.add(p);
          if (inFlight.size >= cfg.concurrency) await Promise.race(inFlight);
        }
      } catch (error) {
        if (!running) return;
        if (failures++ === 0) log(`consume failed, retrying: ${(error as Error).message}`);
        await new Promise((r) => setTimeout(r, backoffDelay(failures, { baseMs: 100, maxMs: 2000 })));
        await declare().catch(() => undefined);
      }
    }
  }

  async function declare(): Promise<void> {
    const jsm = await nc!.jetstreamManager();
    await ensureEventStreams(jsm, cfg);
    await ensureDurableConsumer(jsm, { stream: cfg.edgeStream, durable: cfg.consumer, ackWaitMs: cfg.ackWaitMs, maxAckPending: cfg.concurrency * 4, filterSubject: SUBJECT });
  }

  return {
    get sent() {
      return sent;
    },
    async start() {
      log(`connecting to NATS at ${natsServersForLog(cfg.natsUrl)}`);
      nc = await connectNats(cfg, { name: "pulsecast-notifier", inboxPrefix: inboxPrefix("notifier"), onStatus: (s, d) => s !== "pingTimer" && log(`nats ${s}${d ? ` ${d}` : ""}`) });
      await declare();
      running = true;
      loop = pullLoop();
    },
    async stop() {
      running = false;
      await Promise.allSettled([...inFlight]);
      await nc?.drain().catch(() => nc?.close());
      await Promise.race([loop, new Promise((r) => setTimeout(r, 2000).unref())]);
      transport.close();
    },
  };
}
