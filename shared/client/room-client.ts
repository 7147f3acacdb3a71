// RoomClient: one room of the edge (`/parties/room/<roomId>`) as an app sees it. It owns the bookkeeping every
// client of the room protocol would otherwise repeat: the token as a WebSocket subprotocol, `batch` frames
// unpacked, the presence map kept from the welcome plus join/update/leave, the chat list ordered by id with
// duplicates folded, reconnects with jittered backoff that resume with `?since=<last id>` and fetch the gap
// over HTTP when the server says it replayed only part of it, and the stream state kept current from `event`
// frames. Runs in browsers and Node 22 (global WebSocket and fetch), or with any WebSocket class passed in.
// The room's own fold of stream events (pure): the client keeps its stream state exactly as the room does.
import { nextRoomInfo, type RoomEvent } from "../protocol/stream-state.ts";
import { backoffDelay } from "../backoff.ts";
import {
  type CallServerFrame,
  type ChatMessage,
  type MediaState,
  type PresenceEntry,
  type RoomInfo,
  type ServerFrame,
  type ServerFrameOf,
  SIGNALING_FRAME_TYPES,
  type SingleServerFrame,
} from "../protocol/room.ts";
import { SignalQueue, type SignalingFrame, type SignalMessage, type SignalRefusal } from "./signal-queue.ts";
import { Emitter } from "./emitter.ts";
import { refusalOf, resolveToken, type ServerRefusal, subprotocols, type TokenReason, type TokenSource } from "./token.ts";

export type { ChatMessage, MediaState, PresenceEntry, RoomInfo, SignalMessage, SignalRefusal };
export type StreamInfo = NonNullable<RoomInfo["stream"]>;

/** What a WebSocket constructor must offer (the browser's, Node's global one, or the `ws` package's). */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type WebSocketCtor = new (url: string, protocols: string[]) => WebSocketLike;

export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export interface RoomClientOptions {
  /** the edge's base URL, `https://edge.example` (ws/wss is derived from it) */
  baseUrl: string;
  roomId: string;
  /** a JWT, or a callback asked before every connection attempt (`refused` after the server refused the last one) */
  token: TokenSource;
  /** reconnect backoff: first retry within baseMs, doubling to maxMs, jittered so a crowd does not return at once */
  backoff?: { baseMs?: number; maxMs?: number };
  /** a ping every this many ms; a socket silent for twice as long counts as dead and is replaced (0: off) */
  pingIntervalMs?: number;
  WebSocket?: WebSocketCtor;
  fetch?: typeof fetch;
}

export interface StatusChange {
  state: ConnectionState;
  /** reconnect attempt number (1 = first retry), when reconnecting */
  attempt?: number;
  /** when reconnecting: the delay before the next attempt */
  retryInMs?: number;
}

/** Errors in words: `fatal` ones stop the client (banned, forbidden room, a fixed token that expired). */
export interface RoomClientError {
  code: string;
  message: string;
  fatal: boolean;
  /** the client frame type an `error` frame answered, when known */
  ref?: string;
}

export interface RoomClientEvents extends Record<string, unknown> {
  status: StatusChange;
  welcome: ServerFrameOf<"welcome">;
  /** the ordered chat list changed (new, replayed, deleted or gap-filled messages) */
  messages: readonly ChatMessage[];
  /** one new message as it arrived live (not for replays); `own` when this client sent it */
  message: { message: ChatMessage; own: boolean };
  presence: ReadonlyMap<string, PresenceEntry>;
  /** big rooms: the presence summary (counts, featured users, recent chatters), at most once a second */
  summary: ServerFrameOf<"summary">;
  reactions: { counts: Record<string, number>; at: number };
  comment: ServerFrameOf<"comment">;
  deleted: ServerFrameOf<"deleted">;
  moderation: ServerFrameOf<"moderation">;
  signal: ServerFrameOf<"signal">;
  /** call frames, for call peers only: call.welcome, peer.join, peer.update, peer.leave, call.left (see CallClient) */
  call: CallServerFrame;
  /**
   * A signaling frame (`signal`, `call.*`) that did not reach the room: refused by it (peer_not_found, self_signal,
   * forbidden, call_full, ...), or still queued when the socket dropped (`disconnected`). Rate-limited frames are
   * not reported: they are sent again after the delay the room asks for.
   */
  signalError: SignalRefusal;
  /** a system event posted into the room (stream.*, media.*) */
  event: ServerFrameOf<"event">["event"];
  /** the room's stream state changed (starting → live → ended → recording ready) */
  stream: StreamInfo | undefined;
  /** a resume found more missed messages than the server replays; `filled` once the HTTP fetch closed the gap */
  gap: { after: number; before: number; filled: boolean };
  error: RoomClientError;
}

const DEFAULT_BACKOFF = { baseMs: 250, maxMs: 15_000 };
const HISTORY_PAGE = 200;

interface PendingSend {
  clientId: string;
  text: string;
  sent: boolean;
  resolve(message: ChatMessage): void;
  reject(error: Error): void;
}

export class RoomClient extends Emitter<RoomClientEvents> {
  private readonly opts: RoomClientOptions;
  private readonly Ws: WebSocketCtor;
  private readonly fetchFn: typeof fetch;
  private ws: WebSocketLike | null = null;
  private _state: ConnectionState = "idle";
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private lastFrameAt = 0;
  private tokenReason: TokenReason = "connect";
  private token = "";
  private readonly byId = new Map<number, ChatMessage>();
  private ordered: ChatMessage[] = [];
  private readonly people = new Map<string, PresenceEntry>();
  private pending: PendingSend[] = [];
  private sendCounter = 0;
  private _room: RoomInfo;
  private _me: ServerFrameOf<"welcome">["user"] | null = null;
  private _connectionId: string | null = null;
  private _presenceTotal = 0;
  private _mode: "small" | "big" = "small";
  private _summary: ServerFrameOf<"summary"> | null = null;
  private welcomed = false;
  private readonly signals: SignalQueue;
  private readonly receivedFrom = new Map<string, number>();

  constructor(opts: RoomClientOptions) {
    super();
    this.opts = opts;
    const Ws = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    if (!Ws) throw new Error("no WebSocket implementation: pass one as options.WebSocket");
    this.Ws = Ws;
    this.fetchFn = opts.fetch ?? fetch.bind(globalThis);
    this._room = { roomId: opts.roomId };
    this.signals = new SignalQueue({
      write: (text) => {
        if (!this.isOpen()) return false;
        this.ws!.send(text);
        return true;
      },
      refused: (refusal) => this.emit("signalError", refusal),
    });
  }

  // ---- state an app reads --------------------------------------------------------------------------------

  /** A method, not a property read, so TypeScript does not narrow it across awaits. */
  isClosed(): boolean {
    return this._state === "closed";
  }

  get state(): ConnectionState {
    return this._state;
  }
  /** chat messages known so far, ordered by id, each once */
  get messages(): readonly ChatMessage[] {
    return this.ordered;
  }
  /**
   * Users present, by user id, with their connection (tab) count and state. In a big room (`mode` "big") only
   * the featured ones (broadcasters, moderators); `presenceCount` and `summary` have the counts.
   */
  get presence(): ReadonlyMap<string, PresenceEntry> {
    return this.people;
  }
  /** "small": one object, full presence list; "big": a room over many objects, presence by counts (a room can grow from small to big) */
  get mode(): "small" | "big" {
    return this._mode;
  }
  /** big rooms: the latest presence summary */
  get summary(): ServerFrameOf<"summary"> | null {
    return this._summary;
  }
  /** how many users are present (the welcome's total, kept current by join/leave) */
  get presenceCount(): number {
    return Math.max(this._presenceTotal, this.people.size);
  }
  get room(): RoomInfo {
    return this._room;
  }
  get stream(): StreamInfo | undefined {
    return this._room.stream;
  }
  /** this client's user as the server sees it (after the first welcome) */
  get me(): ServerFrameOf<"welcome">["user"] | null {
    return this._me;
  }
  get connectionId(): string | null {
    return this._connectionId;
  }
  /** highest message id seen: what a reconnect resumes from */
  get lastMessageId(): number {
    return this.ordered.at(-1)?.id ?? 0;
  }

  // ---- lifecycle -----------------------------------------------------------------------------------------

  /** Opens the connection (and keeps it open until close()). Resolves at the first welcome. */
  connect(): Promise<ServerFrameOf<"welcome">> {
    if (this.isClosed()) return Promise.reject(new Error("this client was closed; make a new one"));
    const welcome = new Promise<ServerFrameOf<"welcome">>((resolve, reject) => {
      const offWelcome = this.on("welcome", (w) => (offWelcome(), offError(), resolve(w)));
      const offError = this.on("error", (e) => {
        if (!e.fatal) return;
        offWelcome();
        offError();
        reject(Object.assign(new Error(e.message), { code: e.code }));
      });
    });
    if (this._state === "idle") void this.open();
    return welcome;
  }

  /** Closes for good: no reconnect, pending sends are rejected. */
  close(): void {
    if (this.isClosed()) return;
    this.setState({ state: "closed" });
    this.stopTimers();
    this.signals.disconnected();
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= 1) ws.close(1000, "client closed");
    for (const p of this.pending.splice(0)) p.reject(new Error("client closed before the message was confirmed"));
  }

  /** Drops the current socket as a network failure would (the client then reconnects and resumes). */
  reconnect(): void {
    if (this.isClosed() || !this.ws) return;
    const ws = this.ws;
    this.detach(ws);
    ws.close(4000, "client reconnect");
    this.scheduleReconnect();
  }

  // ---- actions -------------------------------------------------------------------------------------------

  /**
   * Sends a chat message; resolves with the stored message (its id and server time) once the room echoes it.
   * While disconnected it waits and goes out after the next welcome; a send cut off by a drop is matched
   * against the resumed messages and sent again only when the room did not store it.
   */
  send(text: string): Promise<ChatMessage> {
    const clientId = `c${Date.now().toString(36)}-${(++this.sendCounter).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    return new Promise((resolve, reject) => {
      if (this.isClosed()) return reject(new Error("client closed"));
      const p: PendingSend = { clientId, text, sent: false, resolve, reject };
      this.pending.push(p);
      if (this.isOpen()) this.flushSend(p);
    });
  }

  /** An ephemeral live comment (not stored). Dropped when not connected. */
  comment(text: string): boolean {
    return this.sendFrame({ type: "comment", text });
  }
  /** A reaction; the room sends aggregated `reactions` counts a few times a second. */
  react(emoji: string): boolean {
    return this.sendFrame({ type: "react", emoji });
  }
  /** Replaces this user's presence state (typing, status, ...), shared by all the user's tabs. */
  setPresence(state: Record<string, unknown>): boolean {
    return this.sendFrame({ type: "presence", state });
  }
  /** Moderators: delete a message for everyone. */
  deleteMessage(messageId: number): boolean {
    return this.sendFrame({ type: "delete", messageId });
  }
  kick(userId: string, reason?: string): boolean {
    return this.sendFrame({ type: "kick", userId, ...(reason ? { reason } : {}) });
  }
  ban(userId: string, reason?: string): boolean {
    return this.sendFrame({ type: "ban", userId, ...(reason ? { reason } : {}) });
  }
  unban(userId: string): boolean {
    return this.sendFrame({ type: "unban", userId });
  }

  /**
   * WebRTC signaling to one connection of the room (its id from `call.welcome`, `peer.join` or a received signal's
   * `from`). Returns the frame's id. Signaling frames go out in order, paced to the room's signaling budget (the
   * `call.welcome`'s `signalBudget`; the defaults before one); a frame the room refuses for rate comes back by id and
   * is sent again after the delay it names, any other refusal is reported as `signalError` with this id. Frames still
   * queued when the socket drops are reported as `signalError` `disconnected` (their addressee knew this client by
   * a connection id that is gone).
   */
  signal(to: string, message: SignalMessage): string {
    return this.signals.push({ type: "signal", to, ...message });
  }
  /** Joins the room's call as a peer (this connection); the answer is a `call` event with `call.welcome`. */
  joinCall(media: MediaState, replaces?: string): string {
    return this.signals.push({ type: "call.join", media, ...(replaces ? { replaces } : {}) });
  }
  /** Tells the other peers this peer's media state changed. */
  updateCall(media: MediaState): string {
    return this.signals.push({ type: "call.update", media });
  }
  /** Leaves the call (the room connection stays). */
  leaveCall(): string {
    return this.signals.push({ type: "call.leave" });
  }
  /** Signaling frames of the current connection, per peer connection: written (net of refusals) and received. */
  signalCounts(): { sentTo: Record<string, number>; receivedFrom: Record<string, number>; resent: number; refused: number; queued: number } {
    return { ...this.signals.counts(), receivedFrom: Object.fromEntries(this.receivedFrom) };
  }

  /** Loads the page of history before the oldest message held (scrolling back); resolves with what it added. */
  async loadOlder(limit = 50): Promise<ChatMessage[]> {
    const oldest = this.ordered[0]?.id;
    if (oldest === 1) return [];
    const page = await this.historyPage(oldest, limit);
    this.addMessages(page.messages);
    return page.messages;
  }

  /** GET /parties/room/<id>/history?before=&limit= with the current token. */
  async historyPage(before: number | undefined, limit = 50): Promise<{ messages: ChatMessage[]; nextBefore: number | null }> {
    const url = new URL(`${this.httpBase()}/parties/room/${encodeURIComponent(this.opts.roomId)}/history`);
    if (before !== undefined) url.searchParams.set("before", String(before));
    url.searchParams.set("limit", String(limit));
    const token = this.token || (await resolveToken(this.opts.token, "connect"));
    const res = await this.fetchFn(url, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) {
      const refusal = await refusalOf(res);
      throw Object.assign(new Error(`history: ${refusal.message}`), { code: refusal.code, status: refusal.status });
    }
    return (await res.json()) as { messages: ChatMessage[]; nextBefore: number | null };
  }

  // ---- connection ----------------------------------------------------------------------------------------

  private httpBase(): string {
    return this.opts.baseUrl.replace(/\/+$/, "");
  }

  private socketUrl(): string {
    const url = new URL(`${this.httpBase()}/parties/room/${encodeURIComponent(this.opts.roomId)}`);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    // Resume from the last message held: the welcome then carries what was missed instead of the latest ones.
    if (this.welcomed) url.searchParams.set("since", String(this.lastMessageId));
    return url.toString();
  }

  private async open(): Promise<void> {
    if (this.isClosed()) return;
    this.setState({ state: this.welcomed || this.attempt > 0 ? "reconnecting" : "connecting", attempt: this.attempt });
    try {
      this.token = await resolveToken(this.opts.token, this.tokenReason);
    } catch (error) {
      this.fail({ code: "token_unavailable", message: `could not get a sign-in token: ${(error as Error).message}`, fatal: true });
      return;
    }
    if (this.isClosed()) return;
    let ws: WebSocketLike;
    try {
      ws = new this.Ws(this.socketUrl(), subprotocols(this.token));
    } catch (error) {
      this.fail({ code: "bad_url", message: `cannot open the room socket: ${(error as Error).message}`, fatal: true });
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.lastFrameAt = Date.now();
      this.startPing(ws);
    };
    ws.onmessage = (ev) => {
      this.lastFrameAt = Date.now();
      if (typeof ev.data !== "string") return;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(ev.data) as ServerFrame;
      } catch {
        return; // the room only sends JSON text; anything else is not for this client
      }
      const frames: SingleServerFrame[] = frame.type === "batch" ? frame.frames : [frame];
      for (const f of frames) this.handle(f);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.detach(ws);
      void this.closed(ev.code, ev.reason, opened);
    };
    // A refused upgrade: some implementations (Node's undici) report the error at once and the close only when
    // the server ends the HTTP connection, so the error alone ends the attempt.
    ws.onerror = () => {
      if (opened || this.ws !== ws) return;
      this.detach(ws);
      void this.closed(1006, "", false);
    };
  }

  private detach(ws: WebSocketLike): void {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    if (this.ws === ws) this.ws = null;
    this.stopPing();
    this.signals.disconnected();
  }

  private async closed(code: number, reason: string, opened: boolean): Promise<void> {
    if (this.isClosed()) return;
    if (code === 4003) return this.fail({ code: "banned", message: "A moderator banned you from this room.", fatal: true });
    if (code === 1008) this.emit("error", { code: "policy", message: `The room closed the connection${reason ? ` (${reason})` : ""}.`, fatal: false });
    if (!opened) {
      // Browsers hide why an upgrade was refused; the same request over HTTP says it in words.
      const refusal = await this.probeRefusal();
      if (this.isClosed()) return;
      if (refusal) {
        const tokenProblem = refusal.status === 401;
        const fatal = refusal.status === 403 || refusal.status === 400 || refusal.status === 404 || (tokenProblem && typeof this.opts.token === "string");
        if (fatal) return this.fail({ code: refusal.code, message: refusal.message, fatal: true });
        this.emit("error", { code: refusal.code, message: refusal.message, fatal: false });
        if (tokenProblem) this.tokenReason = "refused";
      }
    }
    this.scheduleReconnect();
  }

  /** Why the server refuses this client, or null when it would accept it (or cannot be reached). */
  private async probeRefusal(): Promise<ServerRefusal | null> {
    try {
      const url = `${this.httpBase()}/parties/room/${encodeURIComponent(this.opts.roomId)}/history?limit=1`;
      const res = await this.fetchFn(url, { headers: { authorization: `Bearer ${this.token}` } });
      if (res.ok) return null;
      return await refusalOf(res);
    } catch {
      return null; // unreachable: a network problem, retried with backoff
    }
  }

  private scheduleReconnect(): void {
    if (this.isClosed() || this.retryTimer) return;
    this.attempt++;
    const delay = backoffDelay(this.attempt, { ...DEFAULT_BACKOFF, ...this.opts.backoff });
    this.setState({ state: "reconnecting", attempt: this.attempt, retryInMs: delay });
    if (this.tokenReason === "connect") this.tokenReason = "reconnect";
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.open();
    }, delay);
  }

  private fail(error: RoomClientError): void {
    this.emit("error", error);
    this.close();
  }

  private startPing(ws: WebSocketLike): void {
    const every = this.opts.pingIntervalMs ?? 25_000;
    if (every <= 0) return;
    this.stopPing();
    this.pingTimer = setInterval(() => {
      if (this.ws !== ws) return;
      if (Date.now() - this.lastFrameAt > 2 * every) {
        // No frame, not even a pong, for two intervals: the connection is gone without a close.
        this.reconnect();
        return;
      }
      this.sendFrame({ type: "ping" });
    }, every);
  }

  private stopPing(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  private stopTimers(): void {
    this.stopPing();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private setState(change: StatusChange): void {
    if (this.isClosed() && change.state !== "closed") return;
    this._state = change.state;
    this.emit("status", change);
  }

  private isOpen(): boolean {
    return this._state === "open" && this.ws !== null && this.ws.readyState === 1;
  }

  private sendFrame(frame: Record<string, unknown>): boolean {
    if (!this.isOpen()) return false;
    this.ws!.send(JSON.stringify(frame));
    return true;
  }

  private flushSend(p: PendingSend): void {
    p.sent = this.sendFrame({ type: "send", text: p.text, clientId: p.clientId });
  }

  // ---- frames --------------------------------------------------------------------------------------------

  private handle(frame: SingleServerFrame): void {
    switch (frame.type) {
      case "welcome":
        return void this.onWelcome(frame);
      case "join":
      case "update":
        this.people.set(frame.user.userId, frame.user);
        if (frame.type === "join") this._presenceTotal = Math.max(this._presenceTotal, this.people.size);
        return this.emit("presence", this.people);
      case "leave":
        if (this.people.delete(frame.userId)) this._presenceTotal = Math.max(0, this._presenceTotal - 1);
        return this.emit("presence", this.people);
      case "message": {
        const own = this.settle(frame.message, frame.clientId);
        const isNew = !this.byId.has(frame.message.id);
        this.addMessages([frame.message]);
        if (isNew) this.emit("message", { message: frame.message, own });
        return;
      }
      case "deleted": {
        const m = this.byId.get(frame.messageId);
        if (m) this.addMessages([{ ...m, text: "", deleted: true }]);
        return this.emit("deleted", frame);
      }
      case "reactions":
        return this.emit("reactions", { counts: frame.counts, at: frame.at });
      case "comment":
        return this.emit("comment", frame);
      case "moderation":
        this.emit("moderation", frame);
        // The room says why before it closes this user's sockets: act on it now rather than on the close,
        // whose arrival some WebSocket implementations delay until the TCP connection ends.
        if (frame.userId !== this._me?.userId || frame.action === "unban") return;
        if (frame.action === "ban") return this.fail({ code: "banned", message: `A moderator banned you from this room${frame.reason ? `: ${frame.reason}` : "."}`, fatal: true });
        this.emit("error", { code: "kicked", message: `A moderator removed you from the room${frame.reason ? `: ${frame.reason}` : "."}`, fatal: false });
        return this.reconnect();
      case "signal":
        this.receivedFrom.set(frame.from, (this.receivedFrom.get(frame.from) ?? 0) + 1);
        return this.emit("signal", frame);
      case "call.welcome":
        this.signals.setBudget(frame.signalBudget);
        return this.emit("call", frame);
      case "peer.join":
      case "peer.update":
      case "peer.leave":
      case "call.left":
        return this.emit("call", frame);
      case "event": {
        this.emit("event", frame.event);
        const before = this._room.stream;
        this._room = nextRoomInfo(this._room, frame.event as RoomEvent);
        if (this._room.stream !== before) this.emit("stream", this._room.stream);
        return;
      }
      case "error": {
        // Refusals of signaling frames belong to the signaling queue (resent, or reported as signalError).
        if (frame.ref !== undefined && SIGNALING_FRAME_TYPES.includes(frame.ref) && this.signals.refused(frame)) return;
        if (frame.ref === "send") {
          // The room refused a chat message (forbidden for viewers, rate limited, invalid): fail the oldest send.
          const p = this.pending.find((x) => x.sent);
          if (p) {
            this.pending = this.pending.filter((x) => x !== p);
            p.reject(Object.assign(new Error(frame.message), { code: frame.code }));
          }
        }
        return this.emit("error", { code: frame.code, message: frame.message, fatal: false, ...(frame.ref ? { ref: frame.ref } : {}) });
      }
      case "summary":
        this._summary = frame;
        this.people.clear();
        for (const p of frame.featured) this.people.set(p.userId, p);
        this._presenceTotal = frame.users;
        this.emit("summary", frame);
        return this.emit("presence", this.people);
      case "moved":
        // The room grew big (its close, 4010, may come late): reconnect now; the same URL lands on a shard.
        return this.reconnect();
      case "pong":
        return;
    }
  }

  private async onWelcome(w: ServerFrameOf<"welcome">): Promise<void> {
    const since = this.welcomed ? this.lastMessageId : undefined;
    this.welcomed = true;
    this.attempt = 0;
    this.tokenReason = "reconnect";
    this._me = w.user;
    this._connectionId = w.connectionId;
    this.people.clear();
    for (const p of w.presence) this.people.set(p.userId, p);
    this._presenceTotal = w.presenceTotal;
    // A small room that grew big sent `moved`; the reconnect landed on a shard and says so here.
    this._mode = w.mode ?? "small";
    this._summary = w.summary ? { type: "summary", ...w.summary } : null;
    const streamBefore = this._room.stream;
    this._room = w.room;
    this.setState({ state: "open" });
    if (w.signalBudget) this.signals.setBudget(w.signalBudget);
    this.receivedFrom.clear();
    this.signals.open();
    this.addMessages(w.messages);
    // Sends cut off by the drop: those the room stored came back in the replay; the others go out again.
    for (const p of [...this.pending]) {
      if (!p.sent) continue;
      const stored = w.messages.find((m) => m.userId === w.user.userId && m.text === p.text.trim() && (since === undefined || m.id > since));
      if (stored) this.settle(stored, p.clientId);
      else p.sent = false;
    }
    this.emit("welcome", w);
    this.emit("presence", this.people);
    if (JSON.stringify(streamBefore) !== JSON.stringify(this._room.stream)) this.emit("stream", this._room.stream);
    for (const p of this.pending) if (!p.sent) this.flushSend(p);
    if (w.resume && !w.resume.complete) await this.fillGap(w.resume.since, w.messages[0]?.id);
  }

  /** Fetches the messages between `after` and `before` (exclusive) that a partial resume left out. */
  private async fillGap(after: number, before: number | undefined): Promise<void> {
    if (before === undefined || before <= after + 1) return;
    this.emit("gap", { after, before, filled: false });
    let cursor: number | null = before;
    try {
      while (cursor !== null && cursor > after + 1) {
        const page = await this.historyPage(cursor, HISTORY_PAGE);
        this.addMessages(page.messages.filter((m) => m.id > after));
        const first = page.messages[0];
        cursor = first && first.id > after + 1 ? page.nextBefore : null;
      }
      this.emit("gap", { after, before, filled: true });
    } catch (error) {
      this.emit("error", { code: "gap_fetch_failed", message: `missed messages could not be loaded: ${(error as Error).message}`, fatal: false });
    }
  }

  /** Resolves the pending send this message answers; true when it was this client's. */
  private settle(message: ChatMessage, clientId: string | undefined): boolean {
    if (!clientId) return false;
    const p = this.pending.find((x) => x.clientId === clientId);
    if (!p) return false;
    this.pending = this.pending.filter((x) => x !== p);
    p.resolve(message);
    return true;
  }

  /** Upserts messages by id and keeps the list ordered; emits `messages` when anything changed. */
  private addMessages(messages: readonly ChatMessage[]): void {
    let changed = false;
    let needsSort = false;
    for (const m of messages) {
      const old = this.byId.get(m.id);
      if (old && old.deleted === m.deleted && old.text === m.text) continue;
      changed = true;
      this.byId.set(m.id, m);
      if (old) {
        const i = this.ordered.indexOf(old);
        if (i >= 0) this.ordered[i] = m;
      } else {
        const last = this.ordered.at(-1);
        if (last && last.id > m.id) needsSort = true;
        this.ordered.push(m);
      }
    }
    if (!changed) return;
    if (needsSort) this.ordered.sort((a, b) => a.id - b.id);
    this.ordered = [...this.ordered];
    this.emit("messages", this.ordered);
  }
}
