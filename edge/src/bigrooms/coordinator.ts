// The coordinator of a big room: one per room, named by the room id. It orders chat (one sequence for everyone,
// stored once, in the same tables a small room uses), owns moderation and bans, applies system events, and sums
// the presence and reactions its shards (or relays) report. It holds no client sockets and is never on the
// connect path: shards dial it once when they start, and ask it only for what they cannot serve themselves
// (a snapshot when they start, an older gap on a resume).
//
// Its links are hibernatable sockets, so a coordinator evicted from memory keeps them; its durable state is
// in SQLite and everything in memory (presence reports, reaction counts) is re-sent by the shards within a
// summary period. A link that drops without a clean close means the shard or relay behind it lost its instance:
// the coordinator wakes it, and it dials again and catches up.
import { DurableObject } from "cloudflare:workers";
import { type Envelope, makeEvent, parseEvent } from "../../../shared/envelope.ts";
import { type ChatMessage, type PresenceSummary, type RoomInfo, type SingleServerFrame } from "../../../shared/protocol/room.ts";
import { userFromRequest } from "../auth/claims.ts";
import { errorResponse } from "../auth/errors.ts";
import type { Env } from "../env.ts";
import { AppliedLedger, claimedId, errorText, type EventApplyOutcome } from "../ledger/applied-ledger.ts";
import { carriedOutbox } from "../outbox/carrier.ts";
import { type DeadLetter, type Outbox, type OutboxStatus, type OutboxView, madeEventRow } from "../outbox/outbox.ts";
import { MAX_EMOJI_PER_WINDOW } from "../rooms/reactions.ts";
import { isRoomEvent, type RoomEvent } from "../rooms/room-events.ts";
import { nextRoomInfo } from "../../../shared/protocol/stream-state.ts";
import { RoomStore } from "../rooms/room-store.ts";
import { type EdgeSettings, edgeSettings } from "../settings.ts";
import { DownlinkCoalescer } from "./downlink.ts";
import type { HandoverPart } from "./handover.ts";
import { historyResponse } from "./history.ts";
import { type Chatter, type DownControl, noteChatter, parseUp, type PresenceReport, sumReports, summaryOf, type UpItem } from "./links.ts";
import { parsePartName } from "./placement.ts";
import { LoadMeter, type ObjectStats } from "./stats.ts";

const OPEN = 1;
/** A part that has not reported for this many summary periods is counted as gone (its object was lost). */
const REPORT_TTL_PERIODS = 5;
/** Most bans sent to a starting shard (it refuses banned users at connect without asking). */
const SNAPSHOT_BANS_MAX = 10_000;
/** How long reaction totals and summaries wait for a window that chat opens (downlink.ts). */
const LAZY_MS = 100;

export interface CoordinatorSnapshot {
  /** id of the newest message (0 when none) */
  lastId: number;
  /** the newest messages, oldest first */
  ring: ChatMessage[];
  bans: string[];
  info: RoomInfo;
  summary: PresenceSummary;
}

export interface MessageRange {
  messages: ChatMessage[];
  /** false when some of the range was pruned from history or was longer than asked */
  complete: boolean;
}

interface LinkAttachment {
  from: string;
}

export class RoomCoordinator extends DurableObject<Env> implements OutboxView {
  private readonly settings: EdgeSettings;
  private readonly store: RoomStore;
  private readonly ledger: AppliedLedger;
  private readonly outbox: Outbox;
  private readonly down: DownlinkCoalescer;
  private readonly meter = new LoadMeter();
  private reactions = new Map<string, number>();
  private reactionTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly reports = new Map<string, { report: PresenceReport; at: number }>();
  private chatters: Chatter[] = [];
  private summaryTimer: ReturnType<typeof setTimeout> | null = null;
  private lastSummaryKey = "";
  private lastId: number;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.settings = edgeSettings(env);
    this.store = new RoomStore(ctx.storage);
    this.ledger = new AppliedLedger(ctx.storage);
    this.down = new DownlinkCoalescer(this.settings.roomFlushMs, Math.min(LAZY_MS, this.settings.roomReactionFlushMs), (text) => this.sendDown(text));
    this.outbox = carriedOutbox(ctx.storage, this.settings, this.settings.roomOutboxFlushMs, () => `big room ${this.roomId}`);
    this.lastId = this.store.latest(1)[0]?.id ?? 0;
    void ctx.blockConcurrencyWhile(() => this.outbox.resume());
  }

  private get roomId(): string {
    return this.ctx.id.name ?? "?";
  }

  // ---------------------------------------------------------------------------------------------------
  // HTTP: links from shards and relays, and chat history for clients (through the front Worker)

  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/link" && request.headers.get("upgrade")?.toLowerCase() === "websocket") {
      this.meter.events++;
      const from = url.searchParams.get("from") ?? "";
      const part = parsePartName(from);
      if (!part || part.roomId !== this.roomId) return errorResponse(400, "invalid_link", `'${from}' is not a shard or relay of room ${this.roomId}`);
      const pair = new WebSocketPair();
      this.ctx.acceptWebSocket(pair[1], ["link"]);
      pair[1].serializeAttachment({ from } satisfies LinkAttachment);
      this.scheduleSummary();
      return new Response(null, { status: 101, webSocket: pair[0] });
    }
    if (!userFromRequest(request)) return errorResponse(401, "unauthenticated", "request did not come through the authenticating front Worker");
    const sub = url.pathname.split("/").filter(Boolean).slice(3).join("/");
    if (request.method === "GET" && sub === "history") return this.meter.time(true, () => historyResponse(this.store, url));
    return errorResponse(404, "not_found", "rooms answer GET /parties/room/<roomId>/history over HTTP");
  }

  // ---------------------------------------------------------------------------------------------------
  // RPC from shards

  /** What a starting shard needs to serve welcomes and refuse banned users without asking again. */
  async snapshot(ringSize: number): Promise<CoordinatorSnapshot> {
    return this.meter.time(true, () => ({
      lastId: this.lastId,
      ring: this.store.latest(ringSize),
      bans: this.ctx.storage.sql.exec<{ user_id: string }>("SELECT user_id FROM bans LIMIT ?", SNAPSHOT_BANS_MAX).toArray().map((r) => r.user_id),
      info: this.store.info(this.roomId),
      summary: this.summary(),
    }));
  }

  /** Messages with after < id < before, oldest first, at most `limit` (the newest of the range when longer). */
  async range(after: number, before: number, limit: number): Promise<MessageRange> {
    return this.meter.time(true, () => {
      const wanted = Math.max(0, before - after - 1);
      const messages = this.store.page(before, Math.min(wanted, Math.max(1, limit))).filter((m) => m.id > after);
      // Ids are contiguous (never reused; only pruning removes the oldest), so a full count means nothing is missing.
      return { messages, complete: messages.length === wanted };
    });
  }

  // ---------------------------------------------------------------------------------------------------
  // RPC from the small room this room grew from (handover.ts)

  /** Takes over one part of a small room's state: messages with their ids, bans, room info, applied event ids. */
  async adopt(part: HandoverPart): Promise<{ lastId: number }> {
    this.meter.events++;
    try {
      this.ctx.storage.transactionSync(() => {
        this.store.adoptMessages(part.messages);
        for (const ban of part.bans ?? []) this.store.ban(ban);
        if (part.info) this.store.setInfo(part.info);
        if (part.applied) this.ledger.adopt(part.applied);
      });
    } catch (error) {
      this.store.forgetInfo();
      throw error;
    }
    this.lastId = Math.max(this.lastId, part.messages.at(-1)?.id ?? 0);
    return { lastId: this.lastId };
  }

  /** Chat and moderation the small room held while it handed over (and any that reached it after): applied in order. */
  async submit(items: UpItem[]): Promise<void> {
    this.meter.time(true, () => this.ctx.storage.transactionSync(() => items.forEach((item) => this.apply(item))));
  }

  /** Users present across the shards (the Streams API's viewer count). */
  async presenceCount(): Promise<number> {
    return this.summary().users;
  }

  async stats(): Promise<ObjectStats> {
    return this.meter.snapshot(this.roomId, "coordinator", this.ctx.getWebSockets("link").length);
  }

  async resetStats(): Promise<void> {
    this.meter.reset();
  }

  // ---------------------------------------------------------------------------------------------------
  // Links

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    this.meter.time(true, () => {
      const text = typeof message === "string" ? message : new TextDecoder().decode(message);
      const frame = parseUp(text);
      if (!frame) return console.error(`big room ${this.roomId}: unreadable link frame from ${(ws.deserializeAttachment() as LinkAttachment | null)?.from}`);
      switch (frame.k) {
        case "up":
          return this.ctx.storage.transactionSync(() => {
            for (const item of frame.items) this.apply(item);
          });
        case "react":
          return this.addReactions(frame.counts);
        case "presence":
          this.reports.set(frame.from, { report: frame.report, at: Date.now() });
          return this.scheduleSummary();
      }
    });
  }

  override webSocketClose(ws: WebSocket, code: number): void {
    const from = (ws.deserializeAttachment() as LinkAttachment | null)?.from;
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, "link closed");
    } catch {
      // already closed
    }
    if (!from) return;
    this.reports.delete(from);
    // A clean close is a part with no clients left; anything else lost its instance and may hold clients.
    if (code !== 1000) this.wake(from);
  }

  override webSocketError(ws: WebSocket): void {
    const from = (ws.deserializeAttachment() as LinkAttachment | null)?.from;
    if (from) this.wake(from);
  }

  private wake(from: string): void {
    const part = parsePartName(from);
    if (!part) return;
    const stub = part.kind === "shard" ? this.env.RoomShard.getByName(from) : this.env.RoomRelay.getByName(from);
    this.ctx.waitUntil(stub.wake().catch((error: unknown) => console.warn(`big room ${this.roomId}: could not wake ${from}: ${errorText(error)}`)));
  }

  private apply(item: UpItem): void {
    switch (item.t) {
      case "send": {
        if (this.store.isBanned(item.userId)) return;
        const message = this.store.append(item.userId, item.name, item.text, Date.now(), this.settings.roomHistoryMax);
        this.lastId = message.id;
        this.forward(() =>
          makeEvent(
            "chat.message",
            { roomId: this.roomId, messageId: message.id, userId: message.userId, ...(message.name !== undefined ? { name: message.name } : {}), text: message.text, at: message.at },
            { source: "edge", subject: `room/${this.roomId}` },
          ),
        );
        this.chatters = noteChatter(this.chatters, { userId: item.userId, ...(item.name !== undefined ? { name: item.name } : {}), at: message.at });
        return this.down.push({ type: "message", message, ...(item.clientId !== undefined ? { clientId: item.clientId } : {}) });
      }
      case "comment": {
        if (this.store.isBanned(item.userId)) return;
        const comment: SingleServerFrame = { type: "comment", userId: item.userId, text: item.text, at: Date.now() };
        if (item.name !== undefined) comment.name = item.name;
        return this.down.push(comment);
      }
      case "delete":
        if (!this.store.delete(item.messageId)) return this.control({ k: "err", connId: item.connId, code: "message_not_found", message: `no message ${item.messageId}`, ref: "delete" });
        return this.down.push({ type: "deleted", messageId: item.messageId, by: item.by });
      case "unban":
        this.store.unban(item.userId);
        return this.down.push({ type: "moderation", action: "unban", userId: item.userId, by: item.by });
      case "kick":
      case "ban":
        if (item.t === "ban") this.store.ban({ userId: item.userId, by: item.by, at: Date.now(), ...(item.reason !== undefined ? { reason: item.reason } : {}) });
        this.down.push({ type: "moderation", action: item.t, userId: item.userId, by: item.by, ...(item.reason !== undefined ? { reason: item.reason } : {}) });
        // At once: the shard holding the user closes their sockets when this frame reaches it.
        return this.down.flush();
    }
  }

  private addReactions(counts: Record<string, number>): void {
    for (const [emoji, n] of Object.entries(counts)) {
      if (!Number.isSafeInteger(n) || n <= 0) continue;
      const current = this.reactions.get(emoji);
      if (current === undefined && this.reactions.size >= MAX_EMOJI_PER_WINDOW) continue;
      this.reactions.set(emoji, (current ?? 0) + n);
    }
    this.reactionTimer ??= setTimeout(() => this.meter.time(false, () => this.flushReactions()), this.settings.roomReactionFlushMs);
  }

  private flushReactions(): void {
    this.reactionTimer = null;
    if (this.reactions.size === 0) return;
    const counts = Object.fromEntries(this.reactions);
    this.reactions = new Map();
    this.down.push({ type: "reactions", counts, at: Date.now() }, true);
  }

  // ---------------------------------------------------------------------------------------------------
  // Presence summary: counts at a steady rate, only when something changed

  private summary(): PresenceSummary {
    const now = Date.now();
    const ttl = REPORT_TTL_PERIODS * this.settings.roomSummaryMs;
    for (const [from, r] of this.reports) if (now - r.at > ttl) this.reports.delete(from);
    return summaryOf(sumReports([...this.reports.values()].map((r) => r.report)), this.chatters, this.lastId, now);
  }

  private scheduleSummary(): void {
    this.summaryTimer ??= setTimeout(() => {
      this.summaryTimer = null;
      this.meter.time(false, () => {
        const summary = this.summary();
        const key = JSON.stringify({ ...summary, at: 0 });
        if (key !== this.lastSummaryKey) {
          this.lastSummaryKey = key;
          this.down.push({ type: "summary", ...summary }, true);
        }
      });
      // The tick runs while any part is linked; a coordinator with no links may hibernate.
      if (this.ctx.getWebSockets("link").length > 0) this.scheduleSummary();
    }, this.settings.roomSummaryMs);
  }

  // ---------------------------------------------------------------------------------------------------
  // System events (the same contract as Room.applyEvents)

  async applyEvent(event: Envelope): Promise<{ applied: boolean }> {
    const [outcome] = await this.applyEvents([event]);
    if (!outcome || "error" in outcome) throw new Error(outcome?.error ?? `big room ${this.roomId}: no outcome`);
    return { applied: outcome.applied };
  }

  async applyEvents(events: Envelope[]): Promise<EventApplyOutcome[]> {
    this.meter.events++;
    const checked = events.map((event, index): EventApplyOutcome | { id: string; event: RoomEvent } => {
      const parsed = parseEvent(event);
      if (!parsed.ok) return { id: claimedId(event, index), applied: false, error: `big room ${this.roomId}: ${parsed.error}` };
      const ok = parsed.event;
      if (!isRoomEvent(ok)) return { id: ok.id, applied: false, error: `big room ${this.roomId}: rooms take stream.* and media.* events, not '${ok.type}'` };
      return { id: ok.id, event: ok };
    });
    const valid = checked.filter((c): c is { id: string; event: RoomEvent } => "event" in c);
    let fresh: boolean[];
    try {
      ({ fresh } = this.ledger.claimMany(
        valid.map((v) => v.id),
        (fresh) => {
          const before = this.store.info(this.roomId);
          const info = valid.reduce((info, v, i) => (fresh[i] ? nextRoomInfo(info, v.event) : info), before);
          if (info !== before) this.store.setInfo(info);
        },
      ));
    } catch (error) {
      this.store.forgetInfo();
      const message = `big room ${this.roomId}: ${errorText(error)}`;
      return checked.map((c) => ("event" in c ? { id: c.id, applied: false, error: message } : c));
    }
    const outcomes = new Map(valid.map((v, i) => [v, fresh[i]!]));
    return checked.map((c) => {
      if (!("event" in c)) return c;
      const applied = outcomes.get(c)!;
      // Shards fold the same event into their copy of the room info (nextRoomInfo is pure).
      if (applied) this.down.push({ type: "event", event: c.event });
      return { id: c.id, applied };
    });
  }

  // ---------------------------------------------------------------------------------------------------
  // Outbox (chat events for the media side, as a small room sends them)

  private forward(build: () => Envelope): void {
    let row;
    try {
      row = madeEventRow(build());
    } catch (error) {
      console.error(`big room ${this.roomId}: could not build an event for the media side:`, error);
      return;
    }
    this.outbox.add([row]);
  }

  override async alarm(): Promise<void> {
    await this.outbox.deliver();
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

  // ---------------------------------------------------------------------------------------------------

  /** One serialized frame per link, whatever the number of clients behind it. */
  private sendDown(text: string): void {
    for (const ws of this.ctx.getWebSockets("link")) {
      if (ws.readyState !== OPEN) continue;
      try {
        ws.send(text);
        this.meter.sends++;
      } catch {
        // closing; its close handler wakes the part behind it
      }
    }
  }

  /** A control frame for one connection on some shard (rare: a moderator's error); every shard checks for it. */
  private control(frame: DownControl): void {
    this.sendDown(JSON.stringify(frame));
  }
}
