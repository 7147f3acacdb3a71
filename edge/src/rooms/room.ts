// One Durable Object per room (partyserver): presence, chat with history, live comments, reactions,
// WebRTC signaling relay, moderation, and system events (stream live/ended) pushed into the room.
//
// Hibernation is on: in memory there are only caches (presence map, rate buckets, queued frames) that are
// rebuilt or safely reset after a wake. Durable state is in SQLite (RoomStore) and in each connection's
// attachment (ConnState). The front Worker has verified the caller before any request gets here.
import { type Connection, type ConnectionContext, Server } from "partyserver";
import { type Envelope, makeEvent, parseEvent } from "../../../shared/envelope.ts";
import {
  type CallPeer,
  type ChatMessage,
  type ClientFrame,
  type PresenceEntry,
  ROOM_CLOSE,
  type ServerFrame,
  type SingleServerFrame,
} from "../../../shared/protocol/room.ts";
import { userFromRequest, type VerifiedUser } from "../auth/claims.ts";
import { errorResponse } from "../auth/errors.ts";
import { AppliedLedger, claimedId, errorText, type EventApplyOutcome } from "../ledger/applied-ledger.ts";
import type { Env } from "../env.ts";
import { type DeadLetter, type Outbox, type OutboxRow, type OutboxStatus, type OutboxView, madeEventRow } from "../outbox/outbox.ts";
import { carriedOutbox } from "../outbox/carrier.ts";
import { type EdgeSettings, edgeSettings } from "../settings.ts";
import { FrameCoalescer } from "./coalescer.ts";
import { type ConnState, connStateFor, entryFor, presenceFromStates, stateBytes, userTag } from "./presence.ts";
import { CallRoster, peerOf } from "./call.ts";
import { checkClientFrame, type ConnBuckets, type FrameLimits, newBuckets } from "./client-frames.ts";
import { ReactionAggregator } from "./reactions.ts";
import { isRoomEvent, type RoomEvent } from "./room-events.ts";
import { nextRoomInfo } from "../../../shared/protocol/stream-state.ts";
import { adoptLegacyPending } from "./legacy-pending.ts";
import { RoomStore } from "./room-store.ts";
import { ownsStreamFrom, withStreamOwner } from "../streams/room-owner.ts";
import { isApiStreamUrlEvent, sendPerViewer, viewerPlaybackFrom, viewerRoomInfo, withViewerPlayback, type WithPlayback } from "../streams/room-playback.ts";
import { GROW_RETRY_MS, handoverParts, type HeldFrame, upItemOf } from "../bigrooms/handover.ts";
import { roomMovedResponse } from "../bigrooms/grown.ts";

const OPEN = 1; // WebSocket.READY_STATE_OPEN
/** Page size bounds for GET .../history. */
const HISTORY_PAGE_DEFAULT = 50;
const HISTORY_PAGE_MAX = 200;

type RoomConnection = Connection<ConnState>;

export class Room extends Server<Env> implements OutboxView {
  static override options = { hibernate: true };

  private readonly settings: EdgeSettings;
  private readonly store: RoomStore;
  private readonly ledger: AppliedLedger;
  private readonly coalescer: FrameCoalescer;
  private readonly reactions: ReactionAggregator;
  /** chat and presence events for the media side, written with the change they report (outbox/outbox.ts) */
  readonly outbox: Outbox;
  /** cache of presence, keyed by user id; null until first needed after a (re)start */
  private presence: Map<string, { entry: PresenceEntry; stateAt: number }> | null = null;
  private readonly buckets = new Map<string, ConnBuckets>();
  private readonly limits: FrameLimits;
  /** the call's peers (cache of the peer connections' attachments; built only when a call frame needs it) */
  private readonly call: CallRoster;
  /**
   * Open sockets, counted on connect/close so admitting a connection does not list every socket of the room
   * (10k connections would make that O(n^2)). Recounted exactly when it reaches the limit, and after a wake.
   */
  private openCount: number | null = null;
  /** whether this room has grown into a big room (stored; read once per life of the object) */
  private grownCache: boolean | null = null;
  /** while growing (bigrooms/handover.ts): chat and moderation held for the coordinator, in arrival order */
  private held: { conn: RoomConnection; cs: ConnState; frame: HeldFrame }[] | null = null;
  /** the handover in progress; its end (grown or not) is what system events wait for */
  private growing: Promise<void> | null = null;
  private growFailedAt = 0;
  /** set once the move is done (the sockets were told to go); a frame held after it is forwarded at once */
  private moved = false;
  private forwarding: Promise<void> | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.settings = edgeSettings(env);
    const s = this.settings;
    this.limits = { maxFrameBytes: s.roomMaxFrameBytes, ratePerS: s.roomRatePerS, rateBurst: s.roomRateBurst, rateStrikes: s.roomRateStrikes, signalRatePerS: s.roomSignalRatePerS, signalBurst: s.roomSignalBurst };
    this.call = new CallRoster(() => this.getConnections<ConnState>());
    // Schema setup is synchronous and here (not in onStart) so RPC calls like applyEvent find it too.
    this.store = new RoomStore(ctx.storage);
    this.ledger = new AppliedLedger(ctx.storage);
    this.coalescer = new FrameCoalescer(this.settings.roomFlushMs, (text) => this.sendToAll(text));
    this.reactions = new ReactionAggregator(this.settings.roomReactionFlushMs, (counts) =>
      this.coalescer.push({ type: "reactions", counts, at: Date.now() }),
    );
    this.outbox = carriedOutbox(ctx.storage, this.settings, this.settings.roomOutboxFlushMs, () => `room ${this.name}`);
    adoptLegacyPending(ctx.storage.sql);
    void ctx.blockConcurrencyWhile(() => this.outbox.resume());
  }

  // ---------------------------------------------------------------------------------------------------
  // Entry: refusals that must happen before a socket is accepted (a 4xx/5xx instead of a 101).

  override async fetch(request: Request): Promise<Response> {
    const user = userFromRequest(request);
    // Only the front Worker sets the verified header; a request without it did not pass auth.
    if (!user) return errorResponse(401, "unauthenticated", "request did not come through the authenticating front Worker");
    // A room that grew big is served by its shards and coordinator; the front Worker routes there on this answer.
    if (this.grown()) return roomMovedResponse();
    if (this.store.isBanned(user.userId)) return errorResponse(403, "banned", "you are banned from this room");
    if (request.headers.get("upgrade")?.toLowerCase() === "websocket") {
      if (this.roomIsFull()) return errorResponse(503, "room_full", `room has reached its limit of ${this.settings.roomMaxConnections} connections`, { "retry-after": "5" });
      // A stream made through the Streams API is played through /play, with a token for this viewer if signed.
      // Its owner moderates the room of their own stream.
      const info = this.store.info(this.name);
      return super.fetch(await withStreamOwner(this.env, await withViewerPlayback(this.env, request, info, user), this.name, info, user));
    }
    return super.fetch(request);
  }

  private roomIsFull(): boolean {
    this.openCount ??= this.ctx.getWebSockets().length;
    if (this.openCount < this.settings.roomMaxConnections) return false;
    this.openCount = this.ctx.getWebSockets().length;
    return this.openCount >= this.settings.roomMaxConnections;
  }

  override getConnectionTags(_conn: Connection, ctx: ConnectionContext): string[] {
    const user = userFromRequest(ctx.request);
    return user ? [userTag(user.userId)] : [];
  }

  override async onRequest(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const sub = url.pathname.split("/").filter(Boolean).slice(3).join("/");
    if (request.method === "GET" && sub === "history") return this.history(url);
    return errorResponse(404, "not_found", "rooms answer GET /parties/room/<roomId>/history over HTTP");
  }

  /** Paged chat history for members (anyone the front Worker let in who is not banned). */
  private history(url: URL): Response {
    const beforeRaw = url.searchParams.get("before");
    const limitRaw = url.searchParams.get("limit");
    const before = beforeRaw === null ? undefined : Number(beforeRaw);
    const limit = limitRaw === null ? HISTORY_PAGE_DEFAULT : Number(limitRaw);
    if (before !== undefined && (!Number.isSafeInteger(before) || before < 1)) {
      return errorResponse(400, "invalid_query", "`before` must be a positive integer message id");
    }
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > HISTORY_PAGE_MAX) {
      return errorResponse(400, "invalid_query", `\`limit\` must be an integer from 1 to ${HISTORY_PAGE_MAX}`);
    }
    const messages = this.store.page(before, limit);
    const first = messages[0];
    const nextBefore = first && first.id > 1 && messages.length === limit ? first.id : null;
    return Response.json({ messages, nextBefore });
  }

  // ---------------------------------------------------------------------------------------------------
  // Connections

  override onConnect(conn: RoomConnection, ctx: ConnectionContext): void {
    try {
      this.join(conn, ctx);
    } catch (error) {
      // partyserver would send the client a stack trace; send a clean error instead.
      console.error(`room ${this.name}: connect failed:`, error);
      this.sendTo(conn, { type: "error", code: "internal_error", message: "could not join the room; try again" });
      conn.close(1011, "internal error");
    }
  }

  private join(conn: RoomConnection, ctx: ConnectionContext): void {
    const user = userFromRequest(ctx.request) as VerifiedUser; // fetch() refused requests without one
    if (this.openCount !== null) this.openCount++;
    const presence = this.presenceMap();
    const existing = presence.get(user.userId);
    const now = Date.now();
    const playback = viewerPlaybackFrom(ctx.request);
    const moderates = ownsStreamFrom(ctx.request);
    conn.setState({ ...connStateFor(user, existing?.entry.state ?? {}, existing?.stateAt ?? now), ...(playback ? { playback } : {}), ...(moderates ? { moderates } : {}) });
    this.buckets.set(conn.id, newBuckets(this.limits, now));

    const connections = this.openConnectionsOf(user.userId).length;
    const entry = entryFor(conn.state as ConnState, connections);
    presence.set(user.userId, { entry, stateAt: existing?.stateAt ?? now });

    // Frames still queued (they predate this join) will reach the newcomer after its welcome. That is fine
    // because every room-wide frame is idempotent against the snapshot (presence frames are upserts,
    // messages carry ids), and not flushing here keeps a wave of joins O(n) instead of O(n^2) sends.
    const since = this.sinceParam(ctx.request);
    const resume = since === undefined ? undefined : this.store.after(since, this.settings.roomResumeMax, this.settings.roomWelcomeMessages);
    const messages: ChatMessage[] = resume ? resume.messages : this.store.latest(this.settings.roomWelcomeMessages);
    const entries = [...presence.values()].map((p) => p.entry);
    const { head, rest } = splitPresence(entries);
    this.sendTo(conn, {
      type: "welcome",
      connectionId: conn.id,
      user: (conn.state as ConnState).user,
      presence: head,
      presenceTotal: entries.length,
      messages,
      room: viewerRoomInfo(this.env, this.store.info(this.name), playback),
      ...(since !== undefined && resume ? { resume: { since, complete: resume.complete } } : {}),
      signalBudget: { ratePerS: this.settings.roomSignalRatePerS, burst: this.settings.roomSignalBurst },
    });
    if (rest.length > 0) {
      // The rest of a very large snapshot, in messages of bounded size, to this connection only.
      const overflow = new FrameCoalescer(60_000, (text) => safeSend(conn, text)); // flushed below, never by its timer
      for (const user of rest) overflow.push({ type: "join", user });
      overflow.flush();
    }

    this.coalescer.push(connections === 1 ? { type: "join", user: entry } : { type: "update", user: entry });
    if (connections === 1) this.forwardPresence(entry, "join");
    if (this.shouldGrow()) this.growing = this.grow().finally(() => (this.growing = null));
  }

  override onClose(conn: RoomConnection): void {
    this.buckets.delete(conn.id);
    if (this.openCount !== null) this.openCount = Math.max(0, this.openCount - 1);
    const cs = conn.state as ConnState | null;
    // A grown room's sockets close because everyone moves to the shards: their leaves were recorded at the move.
    if (!cs || this.grown()) return;
    if (cs.call) this.leaveCall(conn.id, cs.user.userId, "closed");
    const presence = this.presenceMap();
    const remaining = this.openConnectionsOf(cs.user.userId, conn);
    if (remaining.length === 0) {
      presence.delete(cs.user.userId);
      this.coalescer.push({ type: "leave", userId: cs.user.userId });
      this.forwardPresence(entryFor(cs, 0), "leave");
      return;
    }
    const current = presence.get(cs.user.userId);
    const entry = { ...(current?.entry ?? entryFor(cs, 0)), connections: remaining.length };
    presence.set(cs.user.userId, { entry, stateAt: current?.stateAt ?? cs.stateAt });
    this.coalescer.push({ type: "update", user: entry });
  }

  override onError(conn: RoomConnection, error: unknown): void {
    console.warn(`room ${this.name}: socket error on ${conn.id}:`, error instanceof Error ? error.message : error);
  }

  // ---------------------------------------------------------------------------------------------------
  // Client frames

  override onMessage(conn: RoomConnection, message: string | ArrayBuffer): void {
    let buckets = this.buckets.get(conn.id);
    if (!buckets) this.buckets.set(conn.id, (buckets = newBuckets(this.limits, Date.now())));
    const verdict = checkClientFrame(message, buckets, Date.now(), this.limits);
    if (verdict.kind === "close") return conn.close(verdict.code, verdict.reason);
    if (verdict.kind === "error") return this.sendError(conn, verdict.code, verdict.message, verdict.ref, verdict.retryAfterMs, verdict.id);
    const frame = verdict.frame;
    try {
      this.handle(conn, conn.state as ConnState, frame);
    } catch (error) {
      console.error(`room ${this.name}: handling ${frame.type} failed:`, error);
      this.sendError(conn, "internal_error", "the server could not handle this frame", frame.type, undefined, "id" in frame ? frame.id : undefined);
    }
  }

  private handle(conn: RoomConnection, cs: ConnState, frame: ClientFrame): void {
    const role = cs.user.role;
    switch (frame.type) {
      case "ping":
        return this.sendTo(conn, { type: "pong", ...(frame.id !== undefined ? { id: frame.id } : {}), at: Date.now() });
      case "send": {
        if (role === "viewer") return this.sendError(conn, "forbidden", "viewers may not chat", frame.type);
        if (this.held) return this.hold(conn, cs, frame);
        // The message and its chat.message event for the media side are stored in one transaction.
        const message = this.ctx.storage.transactionSync(() => {
          const message = this.store.append(cs.user.userId, cs.user.name, frame.text, Date.now(), this.settings.roomHistoryMax);
          this.forward(() =>
            makeEvent(
              "chat.message",
              { roomId: this.name, messageId: message.id, userId: message.userId, ...(message.name !== undefined ? { name: message.name } : {}), text: message.text, at: message.at },
              { source: "edge", subject: `room/${this.name}` },
            ),
          );
          return message;
        });
        this.coalescer.push({ type: "message", message, ...(frame.clientId !== undefined ? { clientId: frame.clientId } : {}) });
        return;
      }
      case "comment": {
        if (role === "viewer") return this.sendError(conn, "forbidden", "viewers may not comment", frame.type);
        const comment: SingleServerFrame = { type: "comment", userId: cs.user.userId, text: frame.text, at: Date.now() };
        if (cs.user.name !== undefined) comment.name = cs.user.name;
        return this.coalescer.push(comment);
      }
      case "react":
        return this.reactions.add(frame.emoji);
      case "presence":
        return this.updateState(conn, cs, frame.state);
      case "signal":
        return this.relaySignal(conn, cs, frame);
      case "call.join":
      case "call.update":
      case "call.leave":
        return this.callFrame(conn, cs, frame);
      case "delete":
      case "kick":
      case "ban":
      case "unban":
        if (role !== "moderator" && !cs.moderates) return this.sendError(conn, "forbidden", `only moderators (and the stream's owner) may ${frame.type}`, frame.type);
        if (this.held) return this.hold(conn, cs, frame);
        return this.moderate(conn, cs, frame);
    }
  }

  private updateState(conn: RoomConnection, cs: ConnState, state: Record<string, unknown>): void {
    const bytes = stateBytes(state);
    if (bytes > this.settings.roomStateMaxBytes) {
      return this.sendError(conn, "state_too_large", `presence state is ${bytes} bytes; the limit is ${this.settings.roomStateMaxBytes}`, "presence");
    }
    const now = Date.now();
    // Every connection of the user carries the state, so any one of them can rebuild presence after a wake.
    for (const other of this.openConnectionsOf(cs.user.userId)) {
      const ocs = other.state as ConnState | null;
      if (ocs) other.setState({ ...ocs, state, stateAt: now });
    }
    const presence = this.presenceMap();
    const connections = presence.get(cs.user.userId)?.entry.connections ?? 1;
    const entry = entryFor({ ...cs, state }, connections);
    presence.set(cs.user.userId, { entry, stateAt: now });
    this.coalescer.push({ type: "update", user: entry });
  }

  private relaySignal(conn: RoomConnection, cs: ConnState, frame: Extract<ClientFrame, { type: "signal" }>): void {
    const refuse = (code: string, message: string) => this.sendError(conn, code, message, "signal", undefined, frame.id);
    if (cs.user.role === "viewer") return refuse("forbidden", "viewers may watch the room but not send signaling");
    if (frame.to === conn.id) return refuse("self_signal", "`to` is this connection's own id; address another peer (from call.welcome, peer.join or a signal's `from`)");
    // Only sockets of this object can be found here, so a signal never leaves its room. getConnection matches the
    // connection id itself, not any tag: a `to` of `u:<userId>` (each socket's user tag) must not reach anyone.
    const found = this.getConnection(frame.to);
    const target = found && found.readyState === OPEN ? found : undefined;
    if (!target) return refuse("peer_not_found", `no connection '${frame.to}' in this room (it left, or never was here)`);
    const out: SingleServerFrame = { type: "signal", from: conn.id, fromUserId: cs.user.userId, kind: frame.kind };
    if (frame.sdp !== undefined) out.sdp = frame.sdp;
    if (frame.candidate !== undefined) out.candidate = frame.candidate;
    if (!safeSend(target, JSON.stringify(out))) refuse("peer_not_found", `connection '${frame.to}' is closing; the signal was not delivered`);
  }

  // ---------------------------------------------------------------------------------------------------
  // Calls (call.ts): peers are connections that sent call.join; only they get peer frames.

  private callFrame(conn: RoomConnection, cs: ConnState, frame: Extract<ClientFrame, { type: "call.join" | "call.update" | "call.leave" }>): void {
    const refuse = (code: string, message: string) => this.sendError(conn, code, message, frame.type, undefined, frame.id);
    if (frame.type === "call.leave") {
      if (!cs.call) return this.sendTo(conn, { type: "call.left", reason: "left", ...(frame.id !== undefined ? { id: frame.id } : {}) });
      this.leaveCall(conn.id, cs.user.userId, "left");
      conn.setState({ ...cs, call: undefined });
      return this.sendTo(conn, { type: "call.left", reason: "left", ...(frame.id !== undefined ? { id: frame.id } : {}) });
    }
    if (frame.type === "call.update") {
      if (!cs.call) return refuse("not_in_call", "this connection is not a peer of the call; send call.join first");
      const call = { ...cs.call, media: frame.media };
      conn.setState({ ...cs, call });
      const peer = peerOf(conn.id, cs, call);
      this.call.set(peer);
      return this.sendToPeers({ type: "peer.update", peer }, conn.id);
    }
    // call.join
    if (cs.user.role === "viewer") return refuse("forbidden", "viewers may watch the room but not join its call");
    const peers = this.call.peers();
    let replaced: CallPeer | undefined;
    if (frame.replaces !== undefined && frame.replaces !== conn.id) {
      // Only a peer of the same user: a client may retire its own stale connection, never someone else's.
      const old = peers.get(frame.replaces);
      if (old && old.userId === cs.user.userId) replaced = old;
    }
    const rejoin = cs.call !== undefined;
    const others = peers.size - (rejoin ? 1 : 0) - (replaced ? 1 : 0);
    if (!rejoin && others >= this.settings.callMaxPeers) {
      return refuse("call_full", `this call is full: ${others} people are in it, the most a mesh call takes here (every peer sends its video to every other one); try again when someone leaves`);
    }
    if (replaced) {
      // Told as a leave (for clients that only follow leaves and joins) and named again in the join below.
      this.leaveCall(replaced.connectionId, replaced.userId, "replaced");
      const old = this.getConnection<ConnState>(replaced.connectionId);
      if (old?.state) {
        old.setState({ ...old.state, call: undefined });
        safeSend(old, JSON.stringify({ type: "call.left", reason: "replaced" } satisfies SingleServerFrame));
      }
    }
    const call = { media: frame.media, joinedAt: cs.call?.joinedAt ?? Date.now() };
    conn.setState({ ...cs, call });
    const self = peerOf(conn.id, cs, call);
    this.call.set(self);
    // The other peers hear of the newcomer before it hears of them, so its first offer never finds a stranger.
    if (rejoin) this.sendToPeers({ type: "peer.update", peer: self }, conn.id);
    else this.sendToPeers({ type: "peer.join", peer: self, ...(replaced ? { replaces: replaced.connectionId } : {}) }, conn.id);
    this.sendTo(conn, {
      type: "call.welcome",
      ...(frame.id !== undefined ? { id: frame.id } : {}),
      self,
      peers: [...this.call.peers().values()].filter((p) => p.connectionId !== conn.id),
      maxPeers: this.settings.callMaxPeers,
      signalBudget: { ratePerS: this.settings.roomSignalRatePerS, burst: this.settings.roomSignalBurst },
    });
  }

  /**
   * Takes a peer out of the call and tells the remaining peers. Callers know it is a peer (its attachment says so):
   * a roster rebuilt while its socket closes no longer lists it, and the others must still hear that it left.
   */
  private leaveCall(connectionId: string, userId: string, reason: "left" | "closed" | "replaced"): void {
    this.call.remove(connectionId);
    this.sendToPeers({ type: "peer.leave", connectionId, userId, reason }, connectionId);
  }

  /** One frame to every peer of the call but `except`, serialized once, at once (calls are small: ≤ CALL_MAX_PEERS). */
  private sendToPeers(frame: SingleServerFrame, except: string): void {
    const text = JSON.stringify(frame);
    for (const id of this.call.peers().keys()) {
      if (id === except) continue;
      const ws = this.getConnection(id);
      if (ws && ws.readyState === OPEN) safeSend(ws, text);
    }
  }

  private moderate(conn: RoomConnection, cs: ConnState, frame: Extract<ClientFrame, { type: "delete" | "kick" | "ban" | "unban" }>): void {
    const by = cs.user.userId;
    if (frame.type === "delete") {
      if (!this.store.delete(frame.messageId)) return this.sendError(conn, "message_not_found", `no message ${frame.messageId}`, "delete");
      return this.coalescer.push({ type: "deleted", messageId: frame.messageId, by });
    }
    if (frame.type === "unban") {
      this.store.unban(frame.userId);
      return this.coalescer.push({ type: "moderation", action: "unban", userId: frame.userId, by });
    }
    if (frame.type === "ban") this.store.ban({ userId: frame.userId, by, at: Date.now(), ...(frame.reason !== undefined ? { reason: frame.reason } : {}) });
    this.coalescer.push({ type: "moderation", action: frame.type, userId: frame.userId, by, ...(frame.reason !== undefined ? { reason: frame.reason } : {}) });
    // Flush now so the removed user learns why before their sockets close.
    this.coalescer.flush();
    const code = frame.type === "ban" ? ROOM_CLOSE.banned : ROOM_CLOSE.kicked;
    for (const target of this.openConnectionsOf(frame.userId)) target.close(code, frame.type === "ban" ? "banned" : "kicked");
  }

  // ---------------------------------------------------------------------------------------------------
  // System events (DO RPC; called by the event ingress and the internal push API)

  /** Users present now (the Streams API shows it as a stream's viewer count). */
  async presenceCount(): Promise<number> {
    if (this.grown()) return this.coordinator().presenceCount();
    return this.presenceMap().size;
  }

  /** Whether this room has grown into a big room (the internal stats route asks). */
  async isGrown(): Promise<boolean> {
    return this.grown();
  }

  /** Applies a `stream.*` / `media.*` event once: a repeated event id changes nothing and is not re-broadcast. */
  async applyEvent(event: Envelope): Promise<{ applied: boolean }> {
    const [outcome] = await this.applyEvents([event]);
    if (!outcome || "error" in outcome) throw new Error(outcome?.error ?? `room ${this.name}: no outcome`);
    return { applied: outcome.applied };
  }

  /**
   * Applies many `stream.*` / `media.*` events, each exactly once, in one storage transaction (one commit
   * for the batch instead of one per event). Returns one outcome per event in input order; an event this room
   * cannot take comes back with `error` and nothing of it is stored, the others are applied. Broadcasts go out
   * after the commit, in input order.
   */
  async applyEvents(events: Envelope[]): Promise<EventApplyOutcome[]> {
    // While the room hands over its state, the room info must not change under it; once grown, the coordinator applies.
    if (this.growing) await this.growing;
    if (this.grown()) return this.coordinator().applyEvents(events);
    // Checked again on this side of the RPC: the schema is the contract, not the caller.
    const checked = events.map((event, index): EventApplyOutcome | { id: string; event: RoomEvent } => {
      const parsed = parseEvent(event);
      if (!parsed.ok) return { id: claimedId(event, index), applied: false, error: `room ${this.name}: ${parsed.error}` };
      const ok = parsed.event;
      if (!isRoomEvent(ok)) return { id: ok.id, applied: false, error: `room ${this.name}: rooms take stream.* and media.* events, not '${ok.type}'` };
      return { id: ok.id, event: ok };
    });
    const valid = checked.filter((c): c is { id: string; event: RoomEvent } => "event" in c);
    let fresh: boolean[];
    try {
      // The room info is folded over the new events in memory and written once (nextRoomInfo is pure).
      ({ fresh } = this.ledger.claimMany(
        valid.map((v) => v.id),
        (fresh) => {
          const before = this.store.info(this.name);
          const info = valid.reduce((info, v, i) => (fresh[i] ? nextRoomInfo(info, v.event) : info), before);
          if (info !== before) this.store.setInfo(info);
        },
      ));
    } catch (error) {
      // Storage failed: nothing of the batch was stored; every event of it is retried.
      this.store.forgetInfo();
      const message = `room ${this.name}: ${errorText(error)}`;
      return checked.map((c) => ("event" in c ? { id: c.id, applied: false, error: message } : c));
    }
    const outcomes = new Map(valid.map((v, i) => [v, fresh[i]!]));
    const perViewer: RoomEvent[] = [];
    // Nobody to tell in a room with no socket open (its info, sent on join, already holds the events' effect):
    // no frame is serialized and no flush timer armed for it.
    // A connect/close count above 0 is enough (at worst a frame for a socket closing now); at 0 or unknown, the
    // runtime's list decides, so a count that lags never silences an open socket. A full room skips building that list.
    const listening = (this.openCount ?? 0) > 0 || this.ctx.getWebSockets().length > 0;
    const result = checked.map((c) => {
      if (!("event" in c)) return c;
      const applied = outcomes.get(c)!;
      if (!applied || !listening) return { id: c.id, applied };
      if (isApiStreamUrlEvent(c.event)) perViewer.push(c.event);
      else this.coalescer.push({ type: "event", event: c.event });
      return { id: c.id, applied };
    });
    if (perViewer.length > 0) {
      // URLs differ per viewer (signed playback): earlier frames first, then one frame per connection.
      this.coalescer.flush();
      await sendPerViewer<ConnState>(this.env, perViewer, this.getConnections<WithPlayback<ConnState>>());
    }
    return result;
  }

  // ---------------------------------------------------------------------------------------------------
  // Growing into a big room (bigrooms/handover.ts says why in this order)

  private grown(): boolean {
    this.grownCache ??= this.store.grown();
    return this.grownCache;
  }

  private coordinator() {
    return this.env.RoomCoordinator.getByName(this.name);
  }

  private shouldGrow(): boolean {
    const at = this.settings.roomShardAt;
    return at > 0 && !this.growing && (this.openCount ?? 0) >= at && !this.grown() && Date.now() - this.growFailedAt >= GROW_RETRY_MS;
  }

  private async grow(): Promise<void> {
    const held: NonNullable<Room["held"]> = (this.held = []);
    const coordinator = this.coordinator();
    try {
      for (const part of handoverParts(this.store, this.ledger, this.name)) await coordinator.adopt(part);
    } catch (error) {
      console.error(`room ${this.name}: could not hand over to a coordinator; staying one object for now: ${errorText(error)}`);
      this.growFailedAt = Date.now();
      this.held = null;
      for (const h of held) this.handle(h.conn, h.cs, h.frame);
      return;
    }
    this.store.setGrown(Date.now());
    this.grownCache = true;
    await this.forwardHeld();
    // Synchronous from here to the last close: nothing held can slip in between.
    this.coalescer.flush();
    const presence = this.presenceMap();
    // Everyone leaves the small room (one outbox write for all); the big room reports counts, not users.
    this.outbox.add([...presence.values()].flatMap(({ entry }) => this.presenceRow({ ...entry, connections: 0 }, "leave")));
    presence.clear();
    // Said in a frame first: some stacks (a proxy in front, some clients) deliver a server's close only later.
    this.sendToAll(JSON.stringify({ type: "moved" } satisfies SingleServerFrame));
    for (const ws of this.ctx.getWebSockets()) {
      try {
        ws.close(ROOM_CLOSE.moved, "the room moved; reconnect");
      } catch {
        // already closing
      }
    }
    this.moved = true;
  }

  private hold(conn: RoomConnection, cs: ConnState, frame: HeldFrame): void {
    this.held!.push({ conn, cs, frame });
    // After the move (a frame that crossed the close on the wire): straight on to the coordinator.
    if (this.moved) this.kickForward();
  }

  private kickForward(): void {
    if (this.forwarding) return;
    this.forwarding = this.forwardHeld().finally(() => {
      this.forwarding = null;
      if (this.held?.length) this.kickForward();
    });
  }

  /** Sends what was held to the coordinator, in order, until nothing is left (retrying a failed call). */
  private async forwardHeld(): Promise<void> {
    const held = this.held!;
    for (let failures = 0; held.length > 0; ) {
      const batch = held.splice(0);
      try {
        await this.coordinator().submit(batch.map((h) => upItemOf(h.cs, h.conn.id, h.frame)));
        failures = 0;
      } catch (error) {
        if (++failures > 5) {
          console.error(`room ${this.name}: ${batch.length} chat/moderation frame(s) held during the move could not reach the coordinator: ${errorText(error)}`);
          continue;
        }
        held.unshift(...batch);
        await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** failures));
      }
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Helpers

  private presenceMap(): Map<string, { entry: PresenceEntry; stateAt: number }> {
    if (!this.presence) {
      const states: ConnState[] = [];
      for (const c of this.getConnections<ConnState>()) if (c.state) states.push(c.state);
      this.presence = presenceFromStates(states);
    }
    return this.presence;
  }

  /** Open connections of a user (via their tag), not counting `except` (a connection that is closing). */
  private openConnectionsOf(userId: string, except?: WebSocket): RoomConnection[] {
    const out: RoomConnection[] = [];
    for (const c of this.getConnections<ConnState>(userTag(userId))) if (c !== except && c.readyState === OPEN) out.push(c);
    return out;
  }

  private sinceParam(request: Request): number | undefined {
    const raw = new URL(request.url).searchParams.get("since");
    if (raw === null) return undefined;
    const n = Number(raw);
    return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
  }

  private forwardPresence(entry: PresenceEntry, change: "join" | "leave"): void {
    this.outbox.add(this.presenceRow(entry, change));
  }

  /** The presence.update event for the media side, as an outbox row (none when it cannot be built: logged). */
  private presenceRow(entry: PresenceEntry, change: "join" | "leave"): OutboxRow[] {
    try {
      return [
        madeEventRow(
          makeEvent(
            "presence.update",
            { roomId: this.name, userId: entry.userId, change, connections: entry.connections, state: entry.state },
            { source: "edge", subject: `room/${this.name}` },
          ),
        ),
      ];
    } catch (error) {
      console.error(`room ${this.name}: could not build an event for the media side:`, error);
      return [];
    }
  }

  /**
   * Writes an event for the media side into the room's outbox, in the caller's transaction. An event that cannot
   * be built or does not pass its schema is a bug on this side: logged, and it never fails the chat or presence
   * change it reports. A storage failure does throw, so the change and its event are stored together or not at all.
   */
  private forward(build: () => Envelope): void {
    let row;
    try {
      row = madeEventRow(build());
    } catch (error) {
      console.error(`room ${this.name}: could not build an event for the media side:`, error);
      return;
    }
    this.outbox.add([row]);
  }

  // ---------------------------------------------------------------------------------------------------
  // Outbox (alarm and operator view)

  override async onAlarm(): Promise<void> {
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

  /** The fan-out fast path: one serialized string to every open socket, without per-socket wrappers. */
  private sendToAll(text: string): void {
    for (const ws of this.ctx.getWebSockets()) if (ws.readyState === OPEN) safeSend(ws, text);
  }

  private sendTo(conn: WebSocket, frame: ServerFrame): void {
    safeSend(conn, JSON.stringify(frame));
  }

  private sendError(conn: WebSocket, code: string, message: string, ref?: string, retryAfterMs?: number, id?: string): void {
    const frame: SingleServerFrame = { type: "error", code, message };
    if (ref !== undefined) frame.ref = ref;
    if (id !== undefined) frame.id = id;
    if (retryAfterMs !== undefined) frame.retryAfterMs = retryAfterMs;
    this.sendTo(conn, frame);
  }
}

/** JSON characters of presence a welcome carries at most; a larger snapshot continues in `join` frames. */
export const WELCOME_PRESENCE_CHARS = 256 * 1024;

/** Splits a presence snapshot into what fits in the welcome and what follows it. Pure. */
export function splitPresence(entries: PresenceEntry[], budget = WELCOME_PRESENCE_CHARS): { head: PresenceEntry[]; rest: PresenceEntry[] } {
  let used = 0;
  for (let i = 0; i < entries.length; i++) {
    used += JSON.stringify(entries[i]).length + 1;
    if (used > budget) return { head: entries.slice(0, i), rest: entries.slice(i) };
  }
  return { head: entries, rest: [] };
}

/** Sends, or returns false when the socket is closing (its close handler updates presence and the call). */
function safeSend(ws: WebSocket, text: string): boolean {
  try {
    ws.send(text);
    return true;
  } catch {
    return false;
  }
}
