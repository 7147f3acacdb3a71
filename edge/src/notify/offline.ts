// Offline channels of one user's inbox: what to plan when a notification is stored, and what to do when a planned
// push or email is due (run from the inbox's alarm).
//
// Rules: sockets first (the inbox delivers at once). Push: at once when the user had no open connection, else when
// still unread after NOTIFY_PUSH_DELAY_MS. Email: only kinds the user opted into, when still unread after
// NOTIFY_EMAIL_DELAY_MS, at most one email per NOTIFY_EMAIL_MIN_INTERVAL_MS; when one is due, every email still
// waiting goes with it as one digest (so does what became due while the interval held them back). Nothing is pushed or mailed during the user's quiet hours: it waits for
// their end. Every planned delivery ends in exactly one notification.sent for its channel, written in the same
// transaction that removes the plan; an email's answer comes from the notifier that sends it.
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
import { type PushResult, sendPush, type VapidKeys } from "./push-send.ts";
import { type Delivery, NotifyStore } from "./store.ts";
import { unsubscribeUrl } from "./unsubscribe.ts";

/** Deliveries handled per alarm run; more due ones get a fresh alarm right away. */
const RUN_LIMIT = 200;
/**
 * Notifications pushed at once by one inbox (each to all of the user's devices in parallel). Small: one user's
 * devices are few, and many inboxes share a runtime; a pile of slow requests ends in timeouts, and a timed-out
 * push is sent again.
 */
const PUSH_CONCURRENCY = 2;

type Outcome = "delivered" | "skipped" | "expired" | "failed";

export class OfflineChannels {
  private readonly storage: DurableObjectStorage;
  readonly store: NotifyStore;
  private readonly notifications: NotificationStore;
  private readonly outbox: Outbox;
  private readonly settings: EdgeSettings;
  private readonly userId: () => string;

  constructor(storage: DurableObjectStorage, store: NotifyStore, notifications: NotificationStore, outbox: Outbox, settings: EdgeSettings, userId: () => string) {
    this.storage = storage;
    this.store = store;
    this.notifications = notifications;
    this.outbox = outbox;
    this.settings = settings;
    this.userId = userId;
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
   * `hasDevices` is read once per batch by the caller.
   */
  plan(n: Pick<InboxNotification, "id" | "kind">, live: boolean, hasDevices: boolean, now: number): void {
    const prefs = this.store.preferences();
    const want = channelsFor(prefs, n.kind);
    if (want.push && hasDevices && this.vapid()) this.store.addDelivery(n.id, "push", live ? now + this.settings.pushDelayMs : now);
    if (want.email && this.emailReady()) this.store.addDelivery(n.id, "email", now + this.settings.emailDelayMs);
  }

  nextDueAt(): number | null {
    return this.store.nextDueAt();
  }

  /** Runs what is due; returns when the next run should be (null: nothing planned). */
  async run(now = Date.now()): Promise<number | null> {
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
        if (unread.length) await this.finish(unread.map(([d, reason]) => ({ d, outcome: "skipped" as const, reason })));
        if (pushes.length) await this.runPushes(pushes, now);
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
    return this.store.due(Date.now(), 1).length > 0 ? Date.now() : this.store.nextDueAt();
  }

  // ---- push ----------------------------------------------------------------------------------------

  private async runPushes(items: [Delivery, InboxNotification][], now: number): Promise<void> {
    const vapid = this.vapid();
    const subs = this.store.subscriptions();
    const gone = new Set<string>();
    const results: { d: Delivery; outcome: Outcome; devices?: number; reason?: string }[] = [];
    const retries: { d: Delivery; at: number; state: Delivery["state"] }[] = [];
    const okAt = new Map<string, number>();
    let next = 0;
    const worker = async () => {
      for (;;) {
        const item = items[next++];
        if (!item) return;
        const [d, n] = item;
        if (!vapid) {
          results.push({ d, outcome: "skipped", reason: "push is not configured (VAPID keys unset)" });
          continue;
        }
        const state = { ...d.state, ok: [...d.state.ok] };
        const todo = subs.filter((s) => !state.ok.includes(s.id) && !gone.has(s.id));
        const { urgency, ttlS } = pushHints(n.kind);
        const req = { payload: pushPayload({ id: n.id, kind: n.kind, title: n.title, body: n.body, url: n.url, at: n.at }), ttlS, urgency, topic: await pushTopic(n.id) };
        const answers = await Promise.all(todo.map(async (s) => [s, await sendPush(s, req, vapid, this.settings.pushTimeoutMs)] as const));
        let retry: Extract<PushResult, { kind: "retry" }> | undefined;
        for (const [s, r] of answers) {
          if (r.kind === "ok") {
            state.ok.push(s.id);
            okAt.set(s.id, Date.now());
          } else if (r.kind === "gone") {
            gone.add(s.id);
            state.expired++;
          } else if (r.kind === "failed") {
            state.failed++;
            console.warn(`inbox ${this.userId()}: push to ${new URL(s.endpoint).origin} refused: ${r.reason}`);
          } else if (!retry || (r.retryAfterMs ?? 0) > (retry.retryAfterMs ?? 0)) retry = r;
        }
        const attempts = d.attempts + 1;
        if (retry && attempts < this.settings.pushMaxAttempts) {
          const delay = Math.max(backoffDelay(attempts, { baseMs: this.settings.pushRetryBaseMs, maxMs: this.settings.pushRetryMaxMs, jitter: 0.2 }), Math.min(retry.retryAfterMs ?? 0, this.settings.pushRetryMaxMs));
          retries.push({ d: { ...d, attempts }, at: now + delay, state });
          continue;
        }
        const devices = state.ok.length;
        if (devices > 0) results.push({ d, outcome: "delivered", devices, ...(retry && { reason: `some devices not reached: ${retry.reason}` }) });
        else if (retry) results.push({ d, outcome: "failed", devices: 0, reason: `gave up after ${attempts} attempts: ${retry.reason}` });
        else if (state.failed > 0) results.push({ d, outcome: "failed", devices: 0, reason: "every push service refused it" });
        else if (state.expired > 0) results.push({ d, outcome: "expired", devices: 0, reason: "every subscription was gone (404/410) and is removed" });
        else results.push({ d, outcome: "skipped", devices: 0, reason: "no push subscription" });
      }
    };
    await Promise.all(Array.from({ length: Math.min(PUSH_CONCURRENCY, items.length) }, worker));
    // A gone subscription is removed now, before anything else is sent to it.
    const answers = await this.answers(results.map((r) => ({ d: r.d, outcome: r.outcome, devices: r.devices, reason: r.reason })));
    this.storage.transactionSync(() => {
      for (const id of gone) this.store.deleteSubscription(id);
      for (const [id, at] of okAt) this.store.markSubscriptionOk(id, at);
      for (const r of retries) this.store.postpone(r.d, r.at, r.d.attempts, r.state);
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
