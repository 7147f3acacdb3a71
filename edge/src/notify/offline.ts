// Offline channels of one user's inbox: what to plan when a notification is stored, and what to do when a planned
// push or email is due (run from the inbox's alarm).
//
// Rules: sockets first (the inbox delivers at once). Push: at once when the user had no open connection, else when
// still unread after NOTIFY_PUSH_DELAY_MS. Email: only kinds the user opted into, when still unread after
// NOTIFY_EMAIL_DELAY_MS, at most one email per NOTIFY_EMAIL_MIN_INTERVAL_MS; when one is due, every email still
// waiting goes with it as one digest (so does what became due while the interval held them back). Nothing is pushed
// or mailed during the user's quiet hours: it waits for their end. Every planned delivery ends in exactly one
// notification.sent for its channel, written in the same transaction that removes the plan; an email's answer
// comes from the notifier that sends it.
import { makeEvent } from "../../../shared/envelope.ts";
import { toBase64Url, utf8 } from "../../../shared/encoding.ts";
import type { InboxNotification } from "../../../shared/protocol/inbox.ts";
import { channelsFor, quietUntil } from "../../../shared/protocol/notifications.ts";
import { backoffDelay } from "../../../shared/backoff.ts";
import type { NotificationStore } from "../inbox/store.ts";
import { sentEventId } from "../../../shared/notification-ids.ts";
import { type Outbox, outboxRow } from "../outbox/outbox.ts";
import type { EdgeSettings } from "../settings.ts";
import { pushHints, pushPayload, pushTopic } from "./push-message.ts";
import { type PushRequest, type PushResult, sendPush, type VapidKeys } from "./push-send.ts";
import { type Delivery, type DeliveryState, NotifyStore, type StoredSubscription } from "./store.ts";
import { unsubscribeUrl } from "./unsubscribe.ts";

/** Deliveries handled per alarm run; more due ones get a fresh alarm right away. */
const RUN_LIMIT = 200;
/**
 * Notifications pushed at once by one inbox (each to all of the user's devices in parallel). Small: one user's
 * devices are few, and many inboxes share a runtime, where a pile of requests only makes every answer later.
 */
const PUSH_CONCURRENCY = 2;
/** A delivery waiting on unanswered requests is looked at again this long after they must have been cancelled. */
const BACKSTOP_GRACE_MS = 5000;

type Outcome = "delivered" | "skipped" | "expired" | "failed";

/** One request to one device: `result` once it has ended. */
interface PushAttempt {
  sub: StoredSubscription;
  startedAt: number;
  done: Promise<PushResult>;
  result?: PushResult;
}

/** What answers decided for a delivery: its final answer, or when to look at it again (with its new state). */
type PushConclusion =
  | { final: true; d: Delivery; outcome: Outcome; devices?: number; reason?: string }
  | { final: false; d: Delivery; at: number; attempts: number; state: DeliveryState };

interface PushEffects {
  gone: Set<string>;
  okAt: Map<string, number>;
  conclusions: PushConclusion[];
}

const attemptKey = (notificationId: string, subscriptionId: string) => `${notificationId}\n${subscriptionId}`;

/** Resolves when every promise has settled or after `ms`, whichever is first. */
function settledOrAfter(promises: Promise<unknown>[], ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const elapsed = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  return Promise.race([Promise.allSettled(promises).then(() => undefined), elapsed]).finally(() => clearTimeout(timer));
}

export class OfflineChannels {
  private readonly storage: DurableObjectStorage;
  readonly store: NotifyStore;
  private readonly notifications: NotificationStore;
  private readonly outbox: Outbox;
  private readonly settings: EdgeSettings;
  private readonly userId: () => string;
  /** sets the object's alarm for a time a late push answer made due (the carrying object's own alarm logic) */
  private readonly arm: (at: number | null) => Promise<void>;
  /** requests this object has sent and not yet recorded an answer for, by notification and subscription */
  private readonly running = new Map<string, PushAttempt>();
  /** resolvers of `settled()` calls, run when `running` empties */
  private waitingForSettled: (() => void)[] = [];
  /** runs and late answers, one at a time: a planned delivery is never picked up by two of them */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    storage: DurableObjectStorage,
    store: NotifyStore,
    notifications: NotificationStore,
    outbox: Outbox,
    settings: EdgeSettings,
    userId: () => string,
    arm: (at: number | null) => Promise<void>,
  ) {
    this.storage = storage;
    this.store = store;
    this.notifications = notifications;
    this.outbox = outbox;
    this.settings = settings;
    this.userId = userId;
    this.arm = arm;
  }

  /**
   * Resolves when no request this object sent is still waiting for its answer (at once when none is). A runtime
   * may evict an object that serves no event, and an evicted object's requests die with it; the carrying object's
   * alarm handler awaits this so that a request a run stopped waiting for can still be answered.
   */
  settled(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waitingForSettled.push(resolve));
  }

  private forget(key: string): void {
    this.running.delete(key);
    if (this.running.size === 0 && this.waitingForSettled.length > 0) {
      const waiting = this.waitingForSettled;
      this.waitingForSettled = [];
      for (const resolve of waiting) resolve();
    }
  }

  /** Runs `work` after every run and late answer already queued. */
  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.chain.then(work);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Runs what is due, after any run in progress; resolves to when the next run is due (null: nothing planned). */
  runDue(): Promise<number | null> {
    return this.serial(async () => {
      try {
        return await this.run();
      } catch (error) {
        console.error(`inbox ${this.userId()}: push/email run failed; retrying in a minute:`, error);
        return Date.now() + 60_000;
      }
    });
  }

  /** When the next run should be: now when something is due, else the earliest planned time (null: none). */
  private nextRunAt(): number | null {
    const at = this.store.nextDueAt();
    return at === null ? null : Math.max(at, Date.now());
  }

  private vapid(): VapidKeys | null {
    const s = this.settings;
    return s.vapidPublicKey && s.vapidPrivateKey ? { subject: s.vapidSubject, publicKey: s.vapidPublicKey, privateKey: s.vapidPrivateKey } : null;
  }

  private emailReady(): boolean {
    return Boolean(this.settings.publicUrl && this.settings.unsubscribeSecret);
  }

  /**
   * Plans the push and email of a notification just stored; synchronous, inside the storing transaction.
   * `hasDevices` is read once per batch by the caller. Returns the earliest time planned (null: nothing).
   */
  plan(n: Pick<InboxNotification, "id" | "kind">, live: boolean, hasDevices: boolean, now: number): number | null {
    const prefs = this.store.preferences();
    const want = channelsFor(prefs, n.kind);
    let earliest: number | null = null;
    if (want.push && hasDevices && this.vapid()) this.store.addDelivery(n.id, "push", (earliest = live ? now + this.settings.pushDelayMs : now));
    if (want.email && this.emailReady()) {
      const at = now + this.settings.emailDelayMs;
      this.store.addDelivery(n.id, "email", at);
      earliest = earliest === null ? at : Math.min(earliest, at);
    }
    return earliest;
  }

  nextDueAt(): number | null {
    return this.store.nextDueAt();
  }

  /** Runs what is due (only through runDue); returns when the next run should be (null: nothing planned). */
  private async run(now = Date.now()): Promise<number | null> {
    const due = this.store.due(now, RUN_LIMIT);
    if (due.length > 0) {
      const quiet = quietUntil(this.store.preferences(), now);
      if (quiet !== null) {
        this.storage.transactionSync(() => due.forEach((d) => this.store.postpone(d, quiet)));
      } else {
        const kept = new Map(this.notifications.byIds([...new Set(due.map((d) => d.notificationId))]).map((n) => [n.id, n]));
        const pushes: [Delivery, InboxNotification][] = [];
        const emails: [Delivery, InboxNotification][] = [];
        const unread: [Delivery, string][] = [];
        for (const d of due) {
          const n = kept.get(d.notificationId);
          if (!n || n.read) unread.push([d, n ? "read before it was due" : "no longer kept in the inbox"]);
          else (d.channel === "push" ? pushes : emails).push([d, n]);
        }
        // A push some devices already took is reported delivered; the rest are not pushed once it is read.
        if (unread.length) {
          await this.finish(
            unread.map(([d, reason]) =>
              d.channel === "push" && d.state.ok.length > 0
                ? { d, outcome: "delivered" as const, devices: d.state.ok.length, reason: `${reason}; the other devices were not pushed` }
                : { d, outcome: "skipped" as const, reason },
            ),
          );
        }
        if (pushes.length) await this.runPushes(pushes);
        if (emails.length) {
          // Once one email is due, every email still waiting goes with it (when it goes now): notifications that
          // arrived together leave as one digest instead of one email each.
          const waiting = this.store.dueEmails(Number.MAX_SAFE_INTEGER, this.settings.emailDigestMax).filter((w) => w.dueAt > now);
          const waitingKept = new Map(this.notifications.byIds(waiting.map((w) => w.notificationId)).map((n) => [n.id, n]));
          const along = waiting.flatMap((w): [Delivery, InboxNotification][] => {
            const n = waitingKept.get(w.notificationId);
            return n && !n.read ? [[w, n]] : [];
          });
          await this.runEmails(emails, along, now);
        }
      }
    }
    return this.nextRunAt();
  }

  // ---- push ----------------------------------------------------------------------------------------
  //
  // A push request is never sent twice while its first one may still be answered. A run waits NOTIFY_PUSH_TIMEOUT_MS
  // for the answers it started; a request still unanswered then keeps running on its own (recorded in the
  // delivery's `inflight`, so no run resends it) and its answer, however late, is recorded as if it had come in
  // time. Only a request that ended without an answer (cancelled after NOTIFY_PUSH_ABANDON_MS, a network error, or
  // lost with an earlier life of this object) is sent again, and then with the same id and Topic, which the push
  // service replaces while undelivered and the service worker shows once (the device may already have it).

  private async runPushes(items: [Delivery, InboxNotification][]): Promise<void> {
    const vapid = this.vapid();
    const subs = this.store.subscriptions();
    const fx: PushEffects = { gone: new Set(), okAt: new Map(), conclusions: [] };
    const answered: string[] = [];
    let detached = false;
    let next = 0;
    const worker = async () => {
      for (;;) {
        const item = items[next++];
        if (!item) return;
        const [d, n] = item;
        if (!vapid) {
          fx.conclusions.push({ final: true, d, outcome: "skipped", reason: "push is not configured (VAPID keys unset)" });
          continue;
        }
        const state: DeliveryState = { ...d.state, ok: [...d.state.ok], inflight: { ...d.state.inflight } };
        // An unanswered request this object no longer runs ended with an earlier life of it: outcome unknown.
        for (const id of Object.keys(state.inflight!)) if (!this.running.has(attemptKey(n.id, id))) delete state.inflight![id];
        const todo = subs.filter((s) => !state.ok.includes(s.id) && !fx.gone.has(s.id) && !this.running.has(attemptKey(n.id, s.id)));
        let attempts = d.attempts;
        if (todo.length > 0) {
          attempts++;
          delete state.retry; // this attempt's answers decide again
          const { urgency, ttlS } = pushHints(n.kind);
          const req = { payload: pushPayload({ id: n.id, kind: n.kind, title: n.title, body: n.body, url: n.url, at: n.at }), ttlS, urgency, topic: await pushTopic(n.id) };
          const started = todo.map((s) => this.startPush(n.id, s, req, vapid));
          await settledOrAfter(started.map((a) => a.done), this.settings.pushTimeoutMs);
          for (const a of started) {
            if (a.result) {
              this.applyAnswer(state, a.sub, a.result, fx);
              answered.push(attemptKey(n.id, a.sub.id));
            } else {
              state.inflight![a.sub.id] = a.startedAt;
              void a.done.then((result) => this.lateAnswer(n.id, a.sub, result));
              detached = true;
            }
          }
        }
        fx.conclusions.push(this.conclude(d, state, attempts, Date.now()));
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(PUSH_CONCURRENCY, items.length) }, worker));
      await this.commitPushes(fx);
      // An alarm now, whose handler waits for the requests left running (see settled()).
      if (detached) void this.arm(Date.now());
    } finally {
      for (const k of answered) this.forget(k);
    }
  }

  /** Starts one request; `result` is set when it has ended (answer, network error or cancellation). */
  private startPush(notificationId: string, sub: StoredSubscription, req: PushRequest, vapid: VapidKeys): PushAttempt {
    const attempt: PushAttempt = { sub, startedAt: Date.now(), done: Promise.resolve(undefined as unknown as PushResult) };
    attempt.done = sendPush(sub, req, vapid, this.settings.pushAbandonMs).then((r) => (attempt.result = r));
    // Until its answer is recorded (in this run, or by lateAnswer), no run sends this notification to this device.
    this.running.set(attemptKey(notificationId, sub.id), attempt);
    return attempt;
  }

  /** Records the answer of a request a run stopped waiting for, as the run would have. */
  private lateAnswer(notificationId: string, sub: StoredSubscription, result: PushResult): void {
    void this.serial(async () => {
      try {
        const fx: PushEffects = { gone: new Set(), okAt: new Map(), conclusions: [] };
        const d = this.store.delivery(notificationId, "push");
        const state: DeliveryState = d ? { ...d.state, ok: [...d.state.ok], inflight: { ...d.state.inflight } } : { ok: [], expired: 0, failed: 0 };
        delete state.inflight?.[sub.id];
        this.applyAnswer(state, sub, result, fx);
        // A retry already planned for other devices keeps its time.
        if (d) fx.conclusions.push(this.conclude(d, state, d.attempts, Date.now(), d.state.retry ? d.dueAt : undefined));
        await this.commitPushes(fx);
      } finally {
        this.forget(attemptKey(notificationId, sub.id));
      }
      return this.nextRunAt();
    })
      .then((at) => this.arm(at))
      .catch((error) => console.error(`inbox ${this.userId()}: a late push answer was not recorded (the delivery's backstop resends it):`, error));
  }

  private applyAnswer(state: DeliveryState, sub: StoredSubscription, r: PushResult, fx: PushEffects): void {
    if (r.kind === "ok") {
      if (!state.ok.includes(sub.id)) state.ok.push(sub.id);
      // last_ok_at is for operators; a write per push would cost more than it tells
      if (sub.lastOkAt === null || Date.now() - sub.lastOkAt > 60_000) fx.okAt.set(sub.id, Date.now());
    } else if (r.kind === "gone") {
      fx.gone.add(sub.id);
      state.expired++;
    } else if (r.kind === "failed") {
      state.failed++;
      console.warn(`inbox ${this.userId()}: push to ${new URL(sub.endpoint).origin} refused: ${r.reason}`);
    } else if (!state.retry || (r.retryAfterMs ?? 0) >= (state.retry.retryAfterMs ?? 0)) {
      state.retry = { reason: r.reason, ...(r.retryAfterMs !== undefined && { retryAfterMs: r.retryAfterMs }) };
    }
  }

  /**
   * What becomes of a delivery after answers: a retry (devices that asked for one, backed off), a wait for requests
   * still running (until the backstop, by which they have been cancelled), or its one final answer.
   */
  private conclude(d: Delivery, state: DeliveryState, attempts: number, now: number, retryAt?: number): PushConclusion {
    const inflight = Object.values(state.inflight ?? {});
    if (state.retry && attempts < this.settings.pushMaxAttempts) {
      const s = this.settings;
      const delay = Math.max(backoffDelay(attempts, { baseMs: s.pushRetryBaseMs, maxMs: s.pushRetryMaxMs, jitter: 0.2 }), Math.min(state.retry.retryAfterMs ?? 0, s.pushRetryMaxMs));
      return { final: false, d, at: retryAt ?? now + delay, attempts, state };
    }
    if (inflight.length > 0) return { final: false, d, at: Math.max(...inflight) + this.settings.pushAbandonMs + BACKSTOP_GRACE_MS, attempts, state };
    const devices = state.ok.length;
    const retry = state.retry;
    if (devices > 0) return { final: true, d, outcome: "delivered", devices, ...(retry && { reason: `some devices not reached: ${retry.reason}` }) };
    if (retry) return { final: true, d, outcome: "failed", devices: 0, reason: `gave up after ${attempts} attempts: ${retry.reason}` };
    if (state.failed > 0) return { final: true, d, outcome: "failed", devices: 0, reason: "every push service refused it" };
    if (state.expired > 0) return { final: true, d, outcome: "expired", devices: 0, reason: "every subscription was gone (404/410) and is removed" };
    return { final: true, d, outcome: "skipped", devices: 0, reason: "no push subscription" };
  }

  /** One transaction: gone subscriptions removed, waits planned, and each final answer with its delivery's end. */
  private async commitPushes(fx: PushEffects): Promise<void> {
    const finals = fx.conclusions.filter((c): c is Extract<PushConclusion, { final: true }> => c.final);
    const answers = await this.answers(finals);
    this.storage.transactionSync(() => {
      for (const id of fx.gone) this.store.deleteSubscription(id);
      for (const [id, at] of fx.okAt) this.store.markSubscriptionOk(id, at);
      for (const c of fx.conclusions) if (!c.final) this.store.postpone(c.d, c.at, c.attempts, c.state);
      for (const [r, row] of answers) {
        this.store.finish(r.d);
        this.outbox.add([row]);
      }
    });
  }

  // ---- email ---------------------------------------------------------------------------------------

  /** `items` are due; `along` are waiting ones that join them if an email goes out now (never postponed here). */
  private async runEmails(items: [Delivery, InboxNotification][], along: [Delivery, InboxNotification][], now: number): Promise<void> {
    const prefs = this.store.preferences();
    const off = items.filter(([, n]) => !channelsFor(prefs, n.kind).email || !this.emailReady());
    if (off.length) await this.finish(off.map(([d]) => ({ d, outcome: "skipped" as const, reason: "email turned off for this kind, or no address" })));
    let send = items.filter((i) => !off.includes(i));
    if (send.length === 0) return;
    const last = this.store.lastEmailAt();
    const allowedAt = last === null ? now : last + this.settings.emailMinIntervalMs;
    if (allowedAt > now) {
      // Rate limit: everything due waits for the same moment and then leaves as one digest.
      this.storage.transactionSync(() => send.forEach(([d]) => this.store.postpone(d, allowedAt)));
      return;
    }
    const joining = along.filter(([, n]) => channelsFor(prefs, n.kind).email);
    send = [...send, ...joining].sort((a, b) => a[1].seq - b[1].seq).slice(0, this.settings.emailDigestMax);
    const userId = this.userId();
    const ids = send.map(([, n]) => n.id);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", utf8(`notification.email\n${userId}\n${ids.join("\n")}`)));
    const emailId = `eml_${toBase64Url(digest).slice(0, 32)}`;
    const event = makeEvent(
      "notification.email",
      {
        emailId,
        userId,
        to: prefs.email!,
        notifications: send.map(([, n]) => ({ notificationId: n.id, kind: n.kind, title: n.title, ...(n.body !== undefined && { body: n.body }), ...(n.url !== undefined && { url: n.url }), at: n.at })),
        unsubscribeUrl: await unsubscribeUrl(this.settings.publicUrl!, this.settings.unsubscribeSecret!, userId),
      },
      { source: "edge", subject: `user/${userId}`, id: emailId },
    );
    const row = outboxRow(event);
    this.storage.transactionSync(() => {
      for (const [d] of send) this.store.finish(d);
      this.store.setLastEmailAt(now);
      this.outbox.add([row]);
    });
  }

  // ---- answers -------------------------------------------------------------------------------------

  private async answers(results: { d: Delivery; outcome: Outcome; devices?: number; reason?: string }[]) {
    const userId = this.userId();
    return Promise.all(
      results.map(async (r) => {
        const id = await sentEventId(userId, r.d.notificationId, r.d.channel);
        const event = makeEvent(
          "notification.sent",
          {
            notificationId: r.d.notificationId,
            userId,
            channel: r.d.channel,
            outcome: r.outcome,
            ...(r.devices !== undefined && { devices: r.devices }),
            ...(r.reason !== undefined && { reason: r.reason.slice(0, 500) }),
          },
          { source: "edge", subject: `user/${userId}`, id },
        );
        return [r, outboxRow(event)] as const;
      }),
    );
  }

  /** Ends deliveries without an attempt worth retrying: their answer and the removal in one transaction. */
  private async finish(results: { d: Delivery; outcome: Outcome; devices?: number; reason?: string }[]): Promise<void> {
    const answers = await this.answers(results);
    this.storage.transactionSync(() => {
      for (const [r, row] of answers) {
        this.store.finish(r.d);
        this.outbox.add([row]);
      }
    });
  }
}
