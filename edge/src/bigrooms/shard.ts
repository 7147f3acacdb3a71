// A shard of a big room: holds up to ROOM_SHARD_MAX_CONNECTIONS client sockets and speaks the same client
// protocol as a small room, with big-room presence (`welcome.mode: "big"`, `summary` frames).
//
// - Clients reach it through the front Worker, which picks the shard by a hash of the user id; a full shard
//   answers 503 `shard_full` and the Worker tries the next one. The coordinator is not asked on connect: the
//   shard knows the bans and the recent chat (its ring) from the snapshot it took when it started.
// - Up: chat, comments and moderation are forwarded to the coordinator (or this shard's relay) in one link frame
//   per ROOM_UPLINK_FLUSH_MS; reactions as counts per ROOM_REACTION_FLUSH_MS; presence as one report per
//   ROOM_SUMMARY_MS when it changed.
// - Down: each frame from the coordinator is passed to every socket here as it came (serialized once, upstream).
//   The shard reads it on the way to keep its ring, bans and room info current and to close kicked users'
//   sockets. Chat ids are contiguous, so a gap (a link that dropped, a shard rebuilt after eviction) shows on the
//   next message or summary and is filled from the coordinator before anything later goes out: clients get every
//   message once and in order.
// - Resume (`?since=`): served from the ring; only a gap older than the ring is asked of the coordinator.
// - Signals go to one connection id; ids carry their shard, so a signal for another shard goes to that one.
import { type Connection, type ConnectionContext, Server } from "partyserver";
import { type ChatMessage, type ClientFrame, type PresenceSummary, ROOM_CLOSE, type RoomInfo, type ServerFrame, type SingleServerFrame, unbatch } from "../../../shared/protocol/room.ts";
import { type Role, userFromRequest, type VerifiedUser } from "../auth/claims.ts";
import { errorResponse } from "../auth/errors.ts";
import type { Env } from "../env.ts";
import { errorText } from "../ledger/applied-ledger.ts";
import { joinFlush } from "../rooms/coalescer.ts";
import { type ConnState, connStateFor, entryFor, stateBytes, userTag } from "../rooms/presence.ts";
import { MAX_EMOJI_PER_WINDOW } from "../rooms/reactions.ts";
import { isRoomEvent, type RoomEvent } from "../rooms/room-events.ts";
import { ownsStreamFrom, withStreamOwner } from "../streams/room-owner.ts";
import { isApiStreamUrlEvent, sendPerViewer, viewerPlaybackFrom, viewerRoomInfo, withViewerPlayback, type WithPlayback } from "../streams/room-playback.ts";
import { nextRoomInfo } from "../../../shared/protocol/stream-state.ts";
import { type EdgeSettings, edgeSettings } from "../settings.ts";
import { checkClientFrame, type ConnBuckets, type FrameLimits, newBuckets } from "../rooms/client-frames.ts";
import type { CoordinatorSnapshot, MessageRange } from "./coordinator.ts";
import { type DownControl, emptyByRole, isFeatured, type PresenceReport, summaryOf, type UpItem } from "./links.ts";
import { parentOf, parsePartName, relayName, shardName, shardOfConnection } from "./placement.ts";
import { MessageRing } from "./ring.ts";
import { LoadMeter, type ObjectStats } from "./stats.ts";
import { upItemOf } from "./handover.ts";
import { Uplink } from "./uplink.ts";

const OPEN = 1;
/** A shard without clients keeps its link this long, then lets go (and may be evicted). */
const IDLE_UNLINK_MS = 30_000;
/** A report goes up at least every this many summary periods, so the coordinator never ages a live shard out. */
const REPORT_REFRESH_PERIODS = 3;

type ShardConnection = Connection<ConnState>;

export class RoomShard extends Server<Env> {
  static override options = { hibernate: true };

  private readonly settings: EdgeSettings;
  private readonly limits: FrameLimits;
  private readonly meter = new LoadMeter();
  private readonly ring: MessageRing;
  private bans = new Set<string>();
  private info: RoomInfo | null = null;
  private summary: PresenceSummary | null = null;
  private uplink: Uplink | null = null;
  private started: Promise<void> | null = null;
  /** open sockets per user, rebuilt from the sockets after a wake */
  private users: Map<string, { cs: ConnState; conns: number }> | null = null;
  private readonly buckets = new Map<string, ConnBuckets>();
  private upItems: UpItem[] = [];
  private upTimer: ReturnType<typeof setTimeout> | null = null;
  private lastUpAt = Number.NEGATIVE_INFINITY;
  private reactions = new Map<string, number>();
  private reactionTimer: ReturnType<typeof setTimeout> | null = null;
  private reportTimer: ReturnType<typeof setInterval> | null = null;
  private reportDirty = true;
  private ticksSinceReport = 0;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  /** frames from above waiting while a gap is filled (or while starting), in arrival order */
  private held: string[] = [];
  private holding = true;
  /** older messages fetched for a resume before its socket is accepted, by connection id */
  private readonly resumes = new Map<string, MessageRange>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.settings = edgeSettings(env);
    const st = this.settings;
    this.limits = { maxFrameBytes: st.roomMaxFrameBytes, ratePerS: st.roomRatePerS, rateBurst: st.roomRateBurst, rateStrikes: st.roomRateStrikes, signalRatePerS: st.roomSignalRatePerS, signalBurst: st.roomSignalBurst };
    this.ring = new MessageRing(this.settings.roomShardRing);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS shard_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
  }

  private get part(): { roomId: string; index: number } {
    const p = parsePartName(this.name);
    if (!p || p.kind !== "shard") throw new Error(`'${this.name}' is not a shard name`);
    return p;
  }

  private coordinator() {
    return this.env.RoomCoordinator.getByName(this.part.roomId);
  }

  override async onStart(): Promise<void> {
    await this.start();
  }

  /** RPC: the parent's nudge after this shard's link dropped (the shard may have lost its instance). */
  async wake(): Promise<void> {
    // A live instance whose link is gone links again and catches its clients up from what it delivered last.
    if (this.started && !this.uplink?.open) this.started = null;
    await this.start();
  }

  /** Links up and takes the snapshot once per instance (again after an idle unlink). */
  private start(): Promise<void> {
    this.started ??= this.link().catch((error: unknown) => {
      this.started = null;
      throw error;
    });
    return this.started;
  }

  private async link(): Promise<void> {
    const { roomId, index } = this.part;
    this.holding = true;
    const parent = parentOf(index, this.settings.roomShards, this.settings.roomRelayFanout);
    const stub = parent.kind === "coordinator" ? this.coordinator() : this.env.RoomRelay.getByName(relayName(roomId, parent.index));
    this.uplink ??= new Uplink({
      label: `shard ${this.name}`,
      dial: () => stub.fetch(`http://link/link?from=${encodeURIComponent(this.name)}`, { headers: { Upgrade: "websocket" } }),
      onMessage: (text) => this.meter.time(true, () => this.fromAbove(text)),
      onOpen: () => (this.reportDirty = true),
    });
    // Link first, snapshot second: whatever the link brings meanwhile is held, and what the snapshot already
    // holds is dropped from it as a repeat.
    await this.uplink.ensure();
    // (The RPC types cannot express presence state's `unknown` values; the object is the coordinator's snapshot.)
    const snap = (await this.coordinator().snapshot(this.settings.roomShardRing)) as unknown as CoordinatorSnapshot;
    this.bans = new Set(snap.bans);
    this.info = snap.info;
    this.summary = snap.summary;
    const delivered = this.deliveredId();
    this.ring.fill(snap.ring, snap.lastId);
    if (delivered > 0 && delivered < snap.lastId && this.ctx.getWebSockets().length > 0) {
      // Rebuilt with clients still connected (their sockets outlived the instance): what they missed meanwhile.
      const missed = this.ring.after(delivered) ?? (await this.coordinator().range(delivered, snap.lastId + 1, this.settings.roomResumeMax)).messages;
      if (missed.length > 0) this.sendToAll(joinFlush(missed.map((message) => JSON.stringify({ type: "message", message }))));
    }
    this.saveDelivered(this.ring.lastId);
    this.reportTimer ??= setInterval(() => this.meter.time(false, () => this.reportTick()), this.settings.roomSummaryMs);
    this.release();
  }

  // ---------------------------------------------------------------------------------------------------
  // Entry

  override async fetch(request: Request): Promise<Response> {
    this.meter.events++;
    const user = userFromRequest(request);
    if (!user) return errorResponse(401, "unauthenticated", "request did not come through the authenticating front Worker");
    try {
      await this.start();
    } catch (error) {
      // A shard that cannot reach its coordinator cannot tell who is banned or what was said: refuse, briefly.
      console.error(`shard ${this.name}: could not start: ${errorText(error)}`);
      return errorResponse(503, "room_unavailable", "the room is starting up; try again", { "retry-after": "2" });
    }
    if (this.bans.has(user.userId)) return errorResponse(403, "banned", "you are banned from this room");
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") return errorResponse(404, "not_found", "a shard takes WebSocket upgrades only");
    if (this.openCount() >= this.settings.roomShardMaxConnections) {
      return errorResponse(503, "shard_full", `shard has reached its limit of ${this.settings.roomShardMaxConnections} connections`);
    }
    const url = new URL(request.url);
    const since = sinceParam(url);
    const id = url.searchParams.get("_pk");
    if (since !== undefined && id && this.ring.after(since) === null) {
      // Older than the ring: the one case a connect asks the coordinator, before the socket exists (so no
      // live frame can reach the client ahead of its welcome).
      try {
        this.resumes.set(id, await this.coordinator().range(since, this.ring.firstId(), this.settings.roomResumeMax));
      } catch (error) {
        console.warn(`shard ${this.name}: resume gap not fetched: ${errorText(error)}`);
      }
    }
    // As a small room does: a stream made through the Streams API is played through /play (a token per viewer
    // when signed), and its owner moderates the room (bigrooms share streams/room-*.ts with small rooms).
    const info = this.info ?? { roomId: this.part.roomId };
    return super.fetch(await withStreamOwner(this.env, await withViewerPlayback(this.env, request, info, user), this.part.roomId, info, user));
  }

  override getConnectionTags(_conn: Connection, ctx: ConnectionContext): string[] {
    const user = userFromRequest(ctx.request);
    return user ? [userTag(user.userId)] : [];
  }

  override onConnect(conn: ShardConnection, ctx: ConnectionContext): void {
    this.meter.time(false, () => {
      try {
        this.join(conn, ctx);
      } catch (error) {
        console.error(`shard ${this.name}: connect failed:`, error);
        this.sendTo(conn, { type: "error", code: "internal_error", message: "could not join the room; try again" });
        conn.close(1011, "internal error");
      }
    });
  }

  private join(conn: ShardConnection, ctx: ConnectionContext): void {
    const user = userFromRequest(ctx.request) as VerifiedUser;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const users = this.userMap();
    const existing = users.get(user.userId);
    const now = Date.now();
    const playback = viewerPlaybackFrom(ctx.request);
    const cs: WithPlayback<ConnState> = { ...connStateFor(user, existing?.cs.state ?? {}, existing?.cs.stateAt ?? now), ...(playback ? { playback } : {}), ...(ownsStreamFrom(ctx.request) ? { moderates: true } : {}) };
    conn.setState(cs);
    this.buckets.set(conn.id, newBuckets(this.limits, now));
    users.set(user.userId, { cs, conns: (existing?.conns ?? 0) + 1 });
    this.reportDirty = true;

    const url = new URL(ctx.request.url);
    const since = sinceParam(url);
    let messages: ChatMessage[];
    let complete = true;
    if (since === undefined) {
      messages = this.ring.latest(this.settings.roomWelcomeMessages);
    } else {
      const older = this.resumes.get(conn.id);
      this.resumes.delete(conn.id);
      const from = Math.max(since, older?.messages.at(-1)?.id ?? since);
      const recent = this.ring.after(from);
      messages = [...(older?.messages ?? []), ...(recent ?? [])];
      complete = recent !== null && (older?.complete ?? true) && messages.length <= this.settings.roomResumeMax;
      if (!complete) messages = this.ring.latest(this.settings.roomWelcomeMessages);
    }
    const known = this.summary ?? summaryOf(this.report(), [], this.ring.lastId, now);
    const summary = { ...known, lastMessageId: Math.max(known.lastMessageId, this.ring.lastId) };
    this.sendTo(conn, {
      type: "welcome",
      mode: "big",
      connectionId: conn.id,
      user: cs.user,
      presence: summary.featured,
      // The newcomer is counted before the next summary says so.
      presenceTotal: Math.max(summary.users, users.size),
      summary,
      messages,
      room: viewerRoomInfo(this.env, this.info ?? { roomId: this.part.roomId }, playback),
      ...(since !== undefined ? { resume: { since, complete } } : {}),
      signalBudget: { ratePerS: this.settings.roomSignalRatePerS, burst: this.settings.roomSignalBurst },
    });
  }

  override onClose(conn: ShardConnection): void {
    this.meter.time(true, () => {
      this.buckets.delete(conn.id);
      const cs = conn.state as ConnState | null;
      if (cs) {
        const users = this.userMap();
        const u = users.get(cs.user.userId);
        if (u && u.conns > 1) u.conns--;
        else users.delete(cs.user.userId);
        this.reportDirty = true;
      }
      if (this.openCount(conn) === 0) {
        this.idleTimer ??= setTimeout(() => {
          this.idleTimer = null;
          if (this.openCount() === 0) this.unlink();
        }, IDLE_UNLINK_MS);
      }
    });
  }

  override onError(conn: ShardConnection, error: unknown): void {
    console.warn(`shard ${this.name}: socket error on ${conn.id}:`, error instanceof Error ? error.message : error);
  }

  // ---------------------------------------------------------------------------------------------------
  // Client frames

  override onMessage(conn: ShardConnection, message: string | ArrayBuffer): void {
    this.meter.clientFrames++;
    this.meter.time(true, () => {
      let buckets = this.buckets.get(conn.id);
      if (!buckets) this.buckets.set(conn.id, (buckets = newBuckets(this.limits, Date.now())));
      const verdict = checkClientFrame(message, buckets, Date.now(), this.limits);
      if (verdict.kind === "close") return conn.close(verdict.code, verdict.reason);
      if (verdict.kind === "error") return this.sendError(conn, verdict.code, verdict.message, verdict.ref, verdict.retryAfterMs, verdict.id);
      try {
        this.handle(conn, conn.state as ConnState, verdict.frame);
      } catch (error) {
        console.error(`shard ${this.name}: handling ${verdict.frame.type} failed:`, error);
        this.sendError(conn, "internal_error", "the server could not handle this frame", verdict.frame.type);
      }
    });
  }

  private handle(conn: ShardConnection, cs: ConnState, frame: ClientFrame): void {
    const { userId, role, name } = cs.user;
    switch (frame.type) {
      case "ping":
        return this.sendTo(conn, { type: "pong", ...(frame.id !== undefined ? { id: frame.id } : {}), at: Date.now() });
      case "send":
        if (role === "viewer") return this.sendError(conn, "forbidden", "viewers may not chat", frame.type);
        return this.up(upItemOf(cs, conn.id, frame));
      case "comment":
        if (role === "viewer") return this.sendError(conn, "forbidden", "viewers may not comment", frame.type);
        return this.up({ t: "comment", userId, ...(name !== undefined ? { name } : {}), text: frame.text });
      case "react":
        return this.react(frame.emoji);
      case "presence":
        return this.updateState(conn, cs, frame.state);
      case "signal":
        return this.relaySignal(conn, cs, frame);
      case "call.join":
      case "call.update":
      case "call.leave":
        // A mesh call is for a handful of people; a big room is an audience. Signaling between two connections
        // still works here (above), but there is no call roster.
        return this.sendError(conn, "call_unavailable", "calls run in small rooms; this room is a big room (ROOM_SHARDED), whose connections are not peers", frame.type, undefined, frame.id);
      case "delete":
      case "kick":
      case "ban":
      case "unban":
        if (role !== "moderator" && !cs.moderates) return this.sendError(conn, "forbidden", `only moderators (and the stream's owner) may ${frame.type}`, frame.type);
        return this.up(upItemOf(cs, conn.id, frame));
    }
  }

  /**
   * Chat and moderation up to the coordinator: right after the current event when the last uplink frame left at
   * least ROOM_UPLINK_FLUSH_MS ago, else that long after it (frames stay that far apart, as with a waiting window,
   * but a message in a quiet moment does not wait for one).
   */
  private up(item: UpItem): void {
    this.upItems.push(item);
    this.upTimer ??= setTimeout(() => this.meter.time(false, () => this.flushUp()), Math.max(0, this.lastUpAt + this.settings.roomUplinkFlushMs - Date.now()));
  }

  private flushUp(): void {
    this.upTimer = null;
    if (this.upItems.length === 0) return;
    this.lastUpAt = Date.now();
    const items = this.upItems;
    this.upItems = [];
    this.uplink?.send(JSON.stringify({ k: "up", items }));
  }

  private react(emoji: string): void {
    const current = this.reactions.get(emoji);
    if (current === undefined && this.reactions.size >= MAX_EMOJI_PER_WINDOW) return;
    this.reactions.set(emoji, (current ?? 0) + 1);
    this.reactionTimer ??= setTimeout(() => {
      this.meter.time(false, () => {
        this.reactionTimer = null;
        const counts = Object.fromEntries(this.reactions);
        this.reactions = new Map();
        this.uplink?.send(JSON.stringify({ k: "react", counts }));
      });
    }, this.settings.roomReactionFlushMs);
  }

  private updateState(conn: ShardConnection, cs: ConnState, state: Record<string, unknown>): void {
    const bytes = stateBytes(state);
    if (bytes > this.settings.roomStateMaxBytes) {
      return this.sendError(conn, "state_too_large", `presence state is ${bytes} bytes; the limit is ${this.settings.roomStateMaxBytes}`, "presence");
    }
    const now = Date.now();
    for (const other of this.getConnections<ConnState>(userTag(cs.user.userId))) {
      const ocs = other.state as ConnState | null;
      if (ocs && other.readyState === OPEN) other.setState({ ...ocs, state, stateAt: now });
    }
    const u = this.userMap().get(cs.user.userId);
    if (u) u.cs = { ...u.cs, state, stateAt: now };
    // Only featured users' state is shown in a big room (in the summary); the rest stays on the shard.
    if (isFeatured(cs.user.role)) this.reportDirty = true;
  }

  private relaySignal(conn: ShardConnection, cs: ConnState, frame: Extract<ClientFrame, { type: "signal" }>): void {
    if (cs.user.role === "viewer") return this.sendError(conn, "forbidden", "viewers may watch the room but not send signaling", "signal", undefined, frame.id);
    if (frame.to === conn.id) return this.sendError(conn, "self_signal", "`to` is this connection's own id; address another connection", "signal", undefined, frame.id);
    const out: SingleServerFrame = { type: "signal", from: conn.id, fromUserId: cs.user.userId, kind: frame.kind };
    if (frame.sdp !== undefined) out.sdp = frame.sdp;
    if (frame.candidate !== undefined) out.candidate = frame.candidate;
    const notFound = () => this.sendError(conn, "peer_not_found", `no connection '${frame.to}' in this room`, "signal", undefined, frame.id);
    const target = shardOfConnection(frame.to);
    if (target === null || target >= this.settings.roomShards) return notFound();
    if (target === this.part.index) return this.deliverLocal(frame.to, JSON.stringify(out)) ? undefined : notFound();
    // Another shard of the same room: straight to it, not through the coordinator.
    const peer = this.env.RoomShard.getByName(shardName(this.part.roomId, target));
    void peer.deliverSignal(frame.to, JSON.stringify(out)).then(
      (found) => found || notFound(),
      () => notFound(),
    );
  }

  /** RPC: a signal from a connection on another shard of this room to one of this shard's connections. */
  async deliverSignal(to: string, text: string): Promise<boolean> {
    return this.meter.time(true, () => this.deliverLocal(to, text));
  }

  private deliverLocal(to: string, text: string): boolean {
    // getConnection matches the connection id itself, never a tag.
    const target = this.getConnection(to);
    if (!target || target.readyState !== OPEN) return false;
    safeSend(target, text);
    return true;
  }

  // ---------------------------------------------------------------------------------------------------
  // From above

  private fromAbove(text: string): void {
    if (this.holding) {
      this.held.push(text);
      return;
    }
    this.process(text);
  }

  /** Passes held frames on, in order, until one of them opens a gap again. */
  private release(): void {
    this.holding = false;
    while (!this.holding && this.held.length > 0) this.process(this.held.shift()!);
  }

  private process(text: string): void {
    if (text.startsWith('{"k":')) return this.control(JSON.parse(text) as DownControl);
    let frames: SingleServerFrame[];
    try {
      frames = unbatch(JSON.parse(text) as ServerFrame);
    } catch {
      return console.error(`shard ${this.name}: unreadable frame from above`);
    }
    // A gap: the first new message (or the summary's newest id) is beyond the next expected id.
    const expected = this.ring.lastId + 1;
    const firstNew = frames.find((f) => f.type === "message" && f.message.id >= expected) as Extract<SingleServerFrame, { type: "message" }> | undefined;
    const summaryHead = (frames.findLast((f) => f.type === "summary") as Extract<SingleServerFrame, { type: "summary" }> | undefined)?.lastMessageId ?? 0;
    const gapTo = firstNew ? (firstNew.message.id > expected ? firstNew.message.id : 0) : summaryHead >= expected ? summaryHead + 1 : 0;
    if (gapTo > 0) {
      this.held.unshift(text);
      return this.fill(expected - 1, gapTo);
    }
    let repeat = false;
    const kicked: { userId: string; code: number; reason: string }[] = [];
    const perViewer: RoomEvent[] = [];
    const kept = frames.filter((f) => {
      switch (f.type) {
        case "message":
          if (f.message.id <= this.ring.lastId) return !(repeat = true);
          this.ring.push(f.message);
          return true;
        case "deleted":
          this.ring.markDeleted(f.messageId);
          return true;
        case "moderation":
          if (f.action === "ban") this.bans.add(f.userId);
          if (f.action === "unban") this.bans.delete(f.userId);
          if (f.action !== "unban") kicked.push({ userId: f.userId, code: f.action === "ban" ? ROOM_CLOSE.banned : ROOM_CLOSE.kicked, reason: f.action === "ban" ? "banned" : "kicked" });
          return true;
        case "event":
          if (this.info && isRoomEvent(f.event as never)) this.info = nextRoomInfo(this.info, f.event as never);
          // An API stream's URLs differ per viewer: sent to each socket below, never as they came.
          if (!isApiStreamUrlEvent(f.event as never)) return true;
          perViewer.push(f.event as RoomEvent);
          return false;
        case "summary":
          this.summary = { ...f };
          delete (this.summary as { type?: string }).type;
          return true;
        default:
          return true;
      }
    });
    if (kept.length > 0) this.sendToAll(repeat || perViewer.length > 0 ? joinFlush(kept.map((f) => JSON.stringify(f))) : text);
    if (perViewer.length > 0) {
      const connections = this.getConnections<WithPlayback<ConnState>>();
      void sendPerViewer<ConnState>(this.env, perViewer, connections).catch((error: unknown) => console.error(`shard ${this.name}: stream event not sent:`, error));
    }
    if (firstNew) this.saveDelivered(this.ring.lastId);
    // After the frame that says why: their sockets close.
    for (const k of kicked) for (const c of this.getConnections(userTag(k.userId))) c.close(k.code, k.reason);
  }

  /** Holds what comes from above, fetches messages (after, before) from the coordinator, sends them, releases. */
  private fill(after: number, before: number): void {
    this.holding = true;
    void this.coordinator()
      .range(after, before, this.settings.roomResumeMax)
      .then(
        (range) =>
          this.meter.time(false, () => {
            const fresh = range.messages.filter((m) => m.id > this.ring.lastId);
            if (!range.complete) console.warn(`shard ${this.name}: messages ${after + 1}..${before - 1} only partly in history; clients skip the rest`);
            for (const m of fresh) this.ring.push(m);
            this.ring.lastId = Math.max(this.ring.lastId, before - 1);
            if (fresh.length > 0) this.sendToAll(joinFlush(fresh.map((message) => JSON.stringify({ type: "message", message }))));
            this.saveDelivered(this.ring.lastId);
            this.release();
          }),
        (error: unknown) => {
          console.warn(`shard ${this.name}: gap ${after + 1}..${before - 1} not fetched (${errorText(error)}); retrying`);
          setTimeout(() => this.fill(after, before), 200);
        },
      );
  }

  private control(frame: DownControl): void {
    if (frame.k !== "err") return;
    const conn = this.getConnection(frame.connId);
    if (conn) this.sendError(conn, frame.code, frame.message, frame.ref);
  }

  // ---------------------------------------------------------------------------------------------------
  // Presence reports

  private reportTick(): void {
    this.ticksSinceReport++;
    if (!this.reportDirty && this.ticksSinceReport < REPORT_REFRESH_PERIODS) return;
    this.reportDirty = false;
    this.ticksSinceReport = 0;
    this.uplink?.send(JSON.stringify({ k: "presence", from: this.name, report: this.report() }));
  }

  private report(): PresenceReport {
    const byRole = emptyByRole();
    const featured = [];
    let connections = 0;
    for (const { cs, conns } of this.userMap().values()) {
      byRole[cs.user.role as Role]++;
      connections += conns;
      if (isFeatured(cs.user.role)) featured.push(entryFor(cs, conns));
    }
    return { connections, users: this.userMap().size, byRole, featured };
  }

  private userMap(): Map<string, { cs: ConnState; conns: number }> {
    if (!this.users) {
      const users = new Map<string, { cs: ConnState; conns: number }>();
      for (const c of this.getConnections<ConnState>()) {
        const cs = c.state;
        if (!cs || c.readyState !== OPEN) continue;
        const u = users.get(cs.user.userId);
        if (!u) users.set(cs.user.userId, { cs, conns: 1 });
        else {
          u.conns++;
          if (cs.stateAt > u.cs.stateAt) u.cs = cs;
        }
      }
      this.users = users;
    }
    return this.users;
  }

  private unlink(): void {
    this.uplink?.stop();
    this.uplink = null;
    this.started = null;
    if (this.reportTimer) clearInterval(this.reportTimer);
    this.reportTimer = null;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  // ---------------------------------------------------------------------------------------------------
  // Stats (internal route, bench)

  async stats(): Promise<ObjectStats> {
    return this.meter.snapshot(this.name, "shard", this.openCount());
  }

  async resetStats(): Promise<void> {
    this.meter.reset();
  }

  // ---------------------------------------------------------------------------------------------------

  private openCount(except?: WebSocket): number {
    let n = 0;
    for (const ws of this.ctx.getWebSockets()) if (ws !== except && ws.readyState === OPEN) n++;
    return n;
  }

  private deliveredId(): number {
    return this.ctx.storage.sql.exec<{ value: number }>("SELECT value FROM shard_meta WHERE key = 'delivered'").toArray()[0]?.value ?? 0;
  }

  private saveDelivered(id: number): void {
    this.ctx.storage.sql.exec("INSERT INTO shard_meta (key, value) VALUES ('delivered', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", id);
  }

  /** One serialized string to every open socket. */
  private sendToAll(text: string): void {
    for (const ws of this.ctx.getWebSockets()) {
      if (ws.readyState !== OPEN) continue;
      safeSend(ws, text);
      this.meter.sends++;
    }
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

function sinceParam(url: URL): number | undefined {
  const raw = url.searchParams.get("since");
  if (raw === null) return undefined;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function safeSend(ws: WebSocket, text: string): void {
  try {
    ws.send(text);
  } catch {
    // closing; its close handler updates presence
  }
}
