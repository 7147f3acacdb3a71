// Every real part of the offline channels at once: nats-server (authorization on), the HTTP -> NATS bridge, the
// edge under wrangler dev (its inboxes push from workerd with Web Crypto), a local Web Push service, a real SMTP
// server and the email notifier process. `sent()` reads every notification.sent the bus stored.
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { type Envelope, makeEvent } from "../../shared/envelope.ts";
import type { EventData } from "../../shared/events/index.ts";
import { generateVapidKeys } from "../../shared/vapid-keys.ts";
import { signWebhook } from "../../shared/signing/webhooks.ts";
import { startHttpToNatsBridge } from "../helpers/bridges.ts";
import { type EdgeServer, ROOT, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";
import { type GroupProcess, spawnGroup } from "../helpers/process.ts";
import { type PushService, startPushService } from "../helpers/push-service.ts";
import { type SmtpReceiver, startSmtp } from "../helpers/smtp.ts";

export type Sent = EventData<"notification.sent">;

export interface NotifyHarness {
  edge: EdgeServer;
  nats: NatsServer;
  push: PushService;
  smtp: SmtpReceiver;
  notifier: GroupProcess;
  vapidPublicKey: string;
  token(userId: string): Promise<string>;
  /** calls the edge as `userId` */
  api(userId: string, method: string, path: string, body?: unknown): Promise<Response>;
  /** subscribes a new push-service client for `userId` through the API; returns its hash and subscription id */
  subscribe(userId: string): Promise<{ hash: string; id: string }>;
  notify(userId: string, data: Partial<EventData<"notification.requested">> & { notificationId: string; title: string }): Promise<Response>;
  /** delivers `event` to the edge the way the NATS -> HTTP bridge does (signed POST /hooks/events) */
  deliver(event: Envelope): Promise<Response>;
  /** every notification.sent stored in JetStream so far */
  sent(): Promise<Sent[]>;
  stop(): Promise<void>;
}

export async function startNotifyHarness(vars: Record<string, string> = {}): Promise<NotifyHarness> {
  const vapid = await generateVapidKeys();
  const bridgePort = await freePort();
  const [nats, push, smtp] = await Promise.all([startNats(), startPushService(), startSmtp()]);
  const bridge = await startHttpToNatsBridge({ nats, env: { HTTP_TO_NATS_PORT: String(bridgePort) } });
  const notifier = spawnGroup(process.execPath, [join(ROOT, "media-node/src/notify/main.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...nats.env("notifier"),
      SMTP_HOST: "127.0.0.1",
      SMTP_PORT: String(smtp.port),
      SMTP_REQUIRE_TLS: "false",
      EMAIL_FROM: "Pulsecast Test <notify@pulsecast.test>",
      NOTIFIER_RETRY_BASE_MS: "200",
      NOTIFIER_RETRY_MAX_MS: "1000",
    },
  });
  await notifier.waitForOutput(/\bready: consumer\b/, 30_000);
  const edge = await startEdge({
    BRIDGE_URL: `http://127.0.0.1:${bridgePort}/events`,
    VAPID_PUBLIC_KEY: vapid.publicKey,
    VAPID_PRIVATE_KEY: vapid.privateKey,
    VAPID_SUBJECT: "mailto:ops@pulsecast.test",
    EDGE_PUBLIC_URL: "http://127.0.0.1:8787",
    UNSUBSCRIBE_SECRET: "test-unsubscribe-secret-0123456789abcdef",
    NOTIFY_PUSH_DELAY_MS: "1500",
    NOTIFY_PUSH_TIMEOUT_MS: "1000",
    NOTIFY_PUSH_ABANDON_MS: "4000",
    NOTIFY_PUSH_RETRY_BASE_MS: "200",
    NOTIFY_PUSH_RETRY_MAX_MS: "1000",
    NOTIFY_EMAIL_DELAY_MS: "1000",
    NOTIFY_EMAIL_MIN_INTERVAL_MS: "5000",
    OUTBOX_RETRY_BASE_MS: "100",
    OUTBOX_RETRY_MAX_MS: "1000",
    ...vars,
  });
  const nc: NatsConnection = await connect(nats.options());
  const jsm = await nc.jetstreamManager();
  const seen: Sent[] = [];
  let nextSeq = 1;

  const token = (userId: string) => mintHs256(TEST_SECRETS.JWT_SECRET, { sub: userId });
  const api = async (userId: string, method: string, path: string, body?: unknown) =>
    fetch(`${edge.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${await token(userId)}`, ...(body !== undefined && { "content-type": "application/json" }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
  return {
    edge,
    nats,
    push,
    smtp,
    notifier,
    vapidPublicKey: vapid.publicKey,
    token,
    api,
    async subscribe(userId) {
      const { hash, ...sub } = await push.subscribe(vapid.publicKey);
      const res = await api(userId, "POST", "/push/subscriptions", sub);
      if (res.status !== 201) throw new Error(`subscribe: ${res.status} ${await res.text()}`);
      return { hash, id: ((await res.json()) as { id: string }).id };
    },
    async notify(userId, data) {
      const event = makeEvent("notification.requested", { userId, kind: "mention", ...data }, { source: "test", subject: `user/${userId}` });
      return fetch(`${edge.url}/internal/users/${userId}/notifications`, {
        method: "POST",
        headers: { authorization: `Bearer ${TEST_SECRETS.INTERNAL_API_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify(event),
      });
    },
    async deliver(event) {
      const body = JSON.stringify(event);
      return fetch(`${edge.url}/hooks/events`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(await signWebhook(TEST_SECRETS.EDGE_INGRESS_SECRET, event.id, body)) },
        body,
      });
    },
    async sent() {
      const info = await jsm.streams.info("EDGE_EVENTS").catch(() => null);
      if (info) {
        for (; nextSeq <= info.state.last_seq; nextSeq++) {
          const m = await jsm.streams.getMessage("EDGE_EVENTS", { seq: nextSeq }).catch(() => null);
          const e = m?.json<Envelope>();
          if (e?.type === "notification.sent") seen.push(e.data as Sent);
        }
      }
      return seen;
    },
    async stop() {
      await nc.close();
      await Promise.allSettled([edge.stop(), notifier.stop(), bridge.stop()]);
      await Promise.allSettled([nats.stop(), push.stop(), smtp.stop()]);
    },
  };
}
