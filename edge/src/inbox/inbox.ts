// One Durable Object per user (named by the user id = JWT `sub`): notifications delivered to every open
// connection of the user at once, kept in SQLite until read, so a user who was offline gets them on the
// next connect. The front Worker verifies the JWT and lets only the user's own token through; the object
// checks the forwarded identity again, because the cost of a mistake is reading someone else's inbox.
//
// Hibernation is on: the object keeps nothing in memory between events that it could not rebuild from
// SQLite and the platform's list of sockets, so an idle user costs nothing.
import { Server, type Connection, type ConnectionContext, type WSMessage } from "partyserver";
import { type Envelope, makeEvent } from "../../../shared/envelope.ts";
import {
  type InboxPage,
  MAX_PAGE_LIMIT,
  type InboxServerFrame,
  type ListRequest,
  listRequest,
  type ReadRequest,
  type ReadResult,
  readRequest,
} from "../../../shared/protocol/inbox.ts";
import { errorResponse, userFromRequest } from "../auth/index.ts";
import type { Env } from "../env.ts";
import { AppliedLedger, claimedId, errorText } from "../ledger/applied-ledger.ts";
import { newBucket, take, type TokenBucket } from "../rooms/rate-limit.ts";
import { carriedOutbox } from "../outbox/carrier.ts";
import { type DeadLetter, type Outbox, type OutboxStatus, type OutboxView, outboxRow } from "../outbox/outbox.ts";
import { type EdgeSettings, edgeSettings } from "../settings.ts";
import { inboxEffectOf } from "./events.ts";
import { parseClientFrame } from "./frames.ts";
import { sentEventId } from "../../../shared/notification-ids.ts";
import { NotificationStore } from "./store.ts";
import { type NotificationPreferences, notificationPreferences, type PushSubscriptionJson, type PushSubscriptionView } from "../../../shared/protocol/notifications.ts";
import { OfflineChannels } from "../notify/offline.ts";
import { NotifyStore } from "../notify/store.ts";

export interface ApplyResult {
  /** false for a repeated event id (or a notification id already kept): nothing changed */
  applied: boolean;
  /** live connections the event was delivered to (0 = the user was offline; it waits in the inbox) */
  connections: number;
}

/** One event's outcome in `applyEvents`: ApplyResult, or `error` for an event this inbox cannot take. */
export type InboxApplyOutcome = { id: string } & (ApplyResult | { applied: false; connections: 0; error: string });

export class Inbox extends Server<Env> implements OutboxView {
  static override options = { hibernate: true };

  private readonly settings: EdgeSettings;
  private readonly store: NotificationStore;
  private readonly ledger: AppliedLedger;
  /** notification.sent answers for the media side, written with the notification they report (outbox/outbox.ts) */
  readonly outbox: Outbox;
  /** push subscriptions, preferences and planned push/email deliveries (notify/offline.ts) */
  private readonly offline: OfflineChannels;
  /** per-connection rate buckets; memory only (after a hibernation wake a connection starts full, having been idle) */
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.settings = edgeSettings(env);
    // Synchronous SQLite: tables exist before any fetch, RPC or hibernated socket event reaches the object.
    this.store = new NotificationStore(ctx.storage, this.settings.inboxMaxStored);
    this.ledger = new AppliedLedger(ctx.storage);
    // An answer is one small event per notification and nothing gathers behind it: delivered right away.
    this.outbox = carriedOutbox(ctx.storage, this.settings, 0, () => `inbox ${this.name}`);
    this.offline = new OfflineChannels(ctx.storage, new NotifyStore(ctx.storage), this.store, this.outbox, this.settings, () => this.name, (at) => this.armFor(at));
    void ctx.blockConcurrencyWhile(async () => {
      await this.outbox.resume();
      await this.armFor(this.offline.nextDueAt());
    });
  }

  /** Refuses an upgrade that did not come through the Worker's auth, or carries another user's identity. */
  override async fetch(request: Request): Promise<Response> {
    const user = userFromRequest(request);
    if (!user) return errorResponse(401, "unauthenticated", "no verified user: connect through the edge with a JWT");
    if (user.userId !== this.name) return errorResponse(403, "inbox_forbidden", "only the inbox owner's token may connect to it");
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return errorResponse(404, "not_found", "the inbox speaks WebSocket here; use GET /inbox and POST /inbox/read over HTTP");
    }
    return super.fetch(request);
  }

  override onConnect(conn: Connection, ctx: ConnectionContext): void {
    // Counted after accept, so the new connection is included.
    if (this.openConnections() > this.settings.inboxMaxConnections) {
      this.sendTo(conn, { type: "error", code: "too_many_connections", message: `at most ${this.settings.inboxMaxConnections} open connections per user` });
      conn.close(1008, "too many connections");
      return;
    }
    const user = userFromRequest(ctx.request);
    const unread = this.store.unreadCount();
    const notifications = this.store.recentUnread(this.settings.inboxWelcomeLimit);
    this.sendTo(conn, {
      type: "welcome",
      connectionId: conn.id,
      user: { userId: this.name, ...(user?.name !== undefined && { name: user.name }), ...(user?.avatar !== undefined && { avatar: user.avatar }) },
      unread,
      notifications,
      more: unread > notifications.length,
      limits: { maxFrameBytes: this.settings.inboxMaxFrameBytes, maxConnections: this.settings.inboxMaxConnections, pageLimit: MAX_PAGE_LIMIT, ratePerS: this.settings.inboxRatePerS },
    });
  }

  override onMessage(conn: Connection, message: WSMessage): void {
    if (!this.takeToken(conn)) return;
    const parsed = parseClientFrame(message, this.settings.inboxMaxFrameBytes);
    if (!parsed.ok) {
      this.sendTo(conn, { type: "error", code: parsed.code, message: parsed.message });
      return;
    }
    const frame = parsed.frame;
    if (frame.type === "read") {
      const { type: _, ...req } = frame;
      void this.markRead(req); // synchronous inside; the promise is only the RPC shape
    } else {
      const { type: _, ...req } = frame;
      this.sendTo(conn, { type: "list", ...this.store.page(req) });
    }
  }

  override onClose(conn: Connection): void {
    this.buckets.delete(conn.id);
  }

  /** Rate check before any parsing: garbage floods cost tokens like anything else. */
  private takeToken(conn: Connection): boolean {
    const now = Date.now();
    const burst = this.settings.inboxRatePerS * 2;
    let bucket = this.buckets.get(conn.id);
    if (!bucket) this.buckets.set(conn.id, (bucket = newBucket(burst, now)));
    const taken = take(bucket, now, this.settings.inboxRatePerS, burst);
    if (taken.ok) return true;
    if (taken.strikes > this.settings.inboxRateStrikes) {
      conn.close(1008, "rate limit exceeded");
      return false;
    }
    this.sendTo(conn, { type: "error", code: "rate_limited", message: `more than ${this.settings.inboxRatePerS} frames/s; slow down`, retryAfterMs: taken.retryAfterMs });
    return false;
  }

  // ---- RPC (front Worker routes, the event ingress) -----------------------------------------------

  /**
   * Applies an event from the media side exactly once: `notification.requested`, `media.ready` and
   * `media.failed` are stored and delivered, `media.progress` is delivered live only. The event id is
   * recorded in the same transaction as the notification, so a redelivery changes nothing.
   * Throws (clear message) for an event that is not for this inbox: a routing bug, not input to ignore.
   */
  async applyEvent(event: Envelope): Promise<ApplyResult> {
    const [outcome] = await this.applyEvents([event]);
    if (!outcome || "error" in outcome) throw new Error(outcome?.error ?? `inbox ${this.name}: no outcome`);
    return { applied: outcome.applied, connections: outcome.connections };
  }

  /**
   * applyEvent for many events in one storage transaction (one commit per batch, not per event). One outcome
   * per event in input order; an event that is not for this inbox comes back with `error` (nothing of it
   * stored) and the others are applied. Frames go out after the commit, in input order.
   */
  async applyEvents(events: Envelope[]): Promise<InboxApplyOutcome[]> {
    const checked = events.map((event, index) => ({ id: claimedId(event, index), event, effect: inboxEffectOf(event, this.name, this.settings.pushMaxPayloadBytes) }));
    const valid = checked.filter((c) => c.effect.ok);
    // Every stored notification is answered with a notification.sent (channel `socket`), written in the same
    // transaction as the notification, so the answer exists exactly when the notification does. Its id derives
    // from the user and notification (an async digest, so computed first): JetStream keeps one answer per notification.
    const stores = valid.flatMap(({ event, effect }) => (effect.ok && effect.kind === "store" ? [{ event, n: effect.notification }] : []));
    const sentIds = await Promise.all(stores.map(({ n }) => sentEventId(this.name, n.id)));
    // From here on nothing is awaited until the frames are sent. The unread count and the table size are read once
    // per batch (not once per notification): each frame carries the count right after its own insert.
    const open = this.openConnections();
    const live = open > 0;
    const answers = new Map<string, ReturnType<typeof outboxRow>>();
    stores.forEach(({ event, n }, i) => {
      const sent = makeEvent(
        "notification.sent",
        { notificationId: n.id, userId: this.name, channel: "socket", outcome: live ? "delivered" : "stored", connections: open },
        { source: "edge", subject: `user/${this.name}`, id: sentIds[i]! },
      );
      answers.set(event.id, outboxRow(sent));
    });
    const now = Date.now();
    let unread = live && stores.length > 0 ? this.store.unreadCount() : 0;
    const hasDevices = stores.length > 0 && this.offline.store.subscriptionCount() > 0;
    let inserted = 0;
    let dueNow = false;
    const applied = this.ledger.applyManyOnce(valid, ({ event, effect }) => {
      if (!effect.ok || effect.kind !== "store") return null;
      const notification = this.store.insert(effect.notification, now);
      if (!notification) return null;
      inserted++;
      const answer = answers.get(event.id);
      if (answer) this.outbox.add([answer]);
      const planned = this.offline.plan(notification, live, hasDevices, now);
      if (planned !== null && planned <= now) dueNow = true;
      return { notification, unread: live ? Math.min(++unread, this.store.maxStored) : 0 };
    });
    if (inserted > 0) {
      this.store.prune();
      // A push due now (an offline user) goes out right after this turn rather than when the alarm gets to it;
      // the alarm stays the backstop (the planned delivery is durable until it is answered; the answer written
      // with the notification sets it).
      if (dueNow) void this.runOffline().then((at) => this.armFor(at)).catch(() => undefined);
    }
    const outcomes = new Map(valid.map((v, i) => [v, applied[i]!]));
    return checked.map(({ id, effect }, i): InboxApplyOutcome => {
      if (!effect.ok) return { id, applied: false, connections: 0, error: effect.error };
      const outcome = outcomes.get(checked[i]!)!;
      if ("error" in outcome) return { id, applied: false, connections: 0, error: `inbox ${this.name}: ${errorText(outcome.error)}` };
      if (!outcome.applied) return { id, applied: false, connections: 0 };
      if (effect.kind === "live") return { id, applied: true, connections: this.deliver(effect.frame) };
      // Same notification id under a new event id (the requester retried with a fresh event): already kept.
      if (!outcome.result) return { id, applied: false, connections: 0 };
      const { notification, unread } = outcome.result;
      return { id, applied: true, connections: live ? this.deliver({ type: "notification", notification, unread }) : 0 };
    });
  }

  /** Newest first; see ListRequest. */
  async list(req: ListRequest = {}): Promise<InboxPage> {
    return this.store.page(listRequest.parse(req));
  }

  async unread(): Promise<number> {
    return this.store.unreadCount();
  }

  /** Marks read and tells every open connection of the user, so all devices agree. */
  async markRead(req: ReadRequest): Promise<ReadResult> {
    const outcome = this.store.markRead(readRequest.parse(req));
    const unread = this.store.unreadCount();
    if (outcome.marked > 0) {
      this.deliver({ type: "read", ...(outcome.ids && { ids: outcome.ids }), ...(outcome.upTo !== undefined && { upTo: outcome.upTo }), unread });
    }
    return { marked: outcome.marked, unread };
  }

  // ---- outbox (alarm and operator view) --------------------------------------------------------------

  override async onAlarm(): Promise<void> {
    // One alarm serves both: due pushes and emails first (their answers then leave with this run's delivery),
    // then the outbox. The outbox sets its own alarm for its retries; this one only ever moves it earlier.
    const next = await this.runOffline();
    await this.outbox.deliver();
    await this.armFor(next);
    // Push requests a run stopped waiting for are still running: this event keeps the object (and them) alive
    // until they are answered or cancelled (NOTIFY_PUSH_ABANDON_MS), so their answers are recorded.
    await this.offline.settled();
  }

  /** Runs the due pushes and emails (one run at a time); resolves to when the next run is due. */
  private runOffline(): Promise<number | null> {
    return this.offline.runDue();
  }

  /** Sets the alarm to `at` unless one is already set earlier. */
  private async armFor(at: number | null): Promise<void> {
    if (at === null) return;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  // ---- push subscriptions and preferences (front Worker routes) ---------------------------------------

  async addPushSubscription(sub: PushSubscriptionJson): Promise<{ subscription: PushSubscriptionView; created: boolean }> {
    return this.offline.store.upsertSubscription(sub, this.settings.pushMaxSubscriptions);
  }

  async pushSubscriptions(): Promise<PushSubscriptionView[]> {
    return this.offline.store.subscriptions().map(({ p256dh: _p, auth: _a, ...view }) => view);
  }

  async removePushSubscription(id: string): Promise<boolean> {
    return this.offline.store.deleteSubscription(id);
  }

  async preferences(): Promise<NotificationPreferences> {
    return this.offline.store.preferences();
  }

  async setPreferences(prefs: NotificationPreferences): Promise<NotificationPreferences> {
    const checked = notificationPreferences.parse(prefs);
    this.offline.store.setPreferences(checked);
    return checked;
  }

  /** The email unsubscribe link: no more email of any kind (push and sockets unchanged). */
  async unsubscribeEmail(): Promise<NotificationPreferences> {
    const prefs = this.offline.store.preferences();
    const kinds = Object.fromEntries(Object.entries(prefs.kinds).map(([k, v]) => [k, { ...v, email: false }]));
    return this.setPreferences({ ...prefs, defaults: { ...prefs.defaults, email: false }, kinds });
  }

  /** Planned push and email deliveries not yet done (operators and tests). */
  async pendingDeliveries(): Promise<number> {
    return this.offline.store.pendingCount();
  }

  async outboxStatus(): Promise<OutboxStatus> {
    return this.outbox.status();
  }

  async outboxPending(limit?: number): Promise<string[]> {
    return this.outbox.pending(limit);
  }

  async outboxDeadLetters(limit?: number): Promise<DeadLetter[]> {
    return this.outbox.deadLetters(limit);
  }

  async requeueDeadLetters(): Promise<{ requeued: number }> {
    return this.outbox.requeueDeadLetters();
  }

  // ---- helpers ---------------------------------------------------------------------------------------

  private openConnections(): number {
    let n = 0;
    for (const _ of this.getConnections()) n++;
    return n;
  }

  /** Sends one frame (serialized once) to every open connection; returns how many took it. */
  private deliver(frame: InboxServerFrame): number {
    const text = JSON.stringify(frame);
    let delivered = 0;
    for (const conn of this.getConnections()) {
      try {
        conn.send(text);
        delivered++;
      } catch {
        // A socket closing under us: the notification stays stored, that device gets it on reconnect.
      }
    }
    return delivered;
  }

  private sendTo(conn: Connection, frame: InboxServerFrame): void {
    try {
      conn.send(JSON.stringify(frame));
    } catch {
      /* closed meanwhile; nothing to tell */
    }
  }
}
