// InboxClient: the signed-in user's notifications (`/parties/inbox/<userId>`): the unread count and the latest
// unread notifications from the welcome, new ones live, read marks from any of the user's devices, and live
// media-processing progress. Reconnects with jittered backoff; every welcome carries the current unread count,
// so nothing needs replaying. Runs in browsers and Node 22.
import { backoffDelay } from "../backoff.ts";
import type { InboxNotification, InboxPage, InboxServerFrame, ReadRequest } from "../protocol/inbox.ts";
import { Emitter } from "./emitter.ts";
import type { ConnectionState, StatusChange, WebSocketCtor, WebSocketLike } from "./room-client.ts";
import { refusalOf, resolveToken, subprotocols, type TokenReason, type TokenSource } from "./token.ts";

export type { InboxNotification };
type Frame<T extends InboxServerFrame["type"]> = Extract<InboxServerFrame, { type: T }>;

export interface InboxClientOptions {
  baseUrl: string;
  /** the JWT's `sub`; taken from the token when absent */
  userId?: string;
  token: TokenSource;
  backoff?: { baseMs?: number; maxMs?: number };
  WebSocket?: WebSocketCtor;
  fetch?: typeof fetch;
}

export interface InboxClientEvents extends Record<string, unknown> {
  status: StatusChange;
  welcome: Frame<"welcome">;
  unread: number;
  /** a new notification, live */
  notification: InboxNotification;
  /** the notifications held changed (new, read) */
  notifications: readonly InboxNotification[];
  /** media processing progress (live only, not stored) */
  progress: Frame<"progress">;
  error: { code: string; message: string; fatal: boolean };
}

const DEFAULT_BACKOFF = { baseMs: 250, maxMs: 15_000 };

export class InboxClient extends Emitter<InboxClientEvents> {
  private readonly opts: InboxClientOptions;
  private readonly Ws: WebSocketCtor;
  private readonly fetchFn: typeof fetch;
  private ws: WebSocketLike | null = null;
  private _state: ConnectionState = "idle";
  private _unread = 0;
  private held: InboxNotification[] = [];
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private token = "";
  private tokenReason: TokenReason = "connect";

  constructor(opts: InboxClientOptions) {
    super();
    this.opts = opts;
    const Ws = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    if (!Ws) throw new Error("no WebSocket implementation: pass one as options.WebSocket");
    this.Ws = Ws;
    this.fetchFn = opts.fetch ?? fetch.bind(globalThis);
  }

  /** A method, not a property read, so TypeScript does not narrow it across awaits. */
  isClosed(): boolean {
    return this._state === "closed";
  }

  get state(): ConnectionState {
    return this._state;
  }
  get unread(): number {
    return this._unread;
  }
  /** notifications held (welcome's unread ones plus those that arrived live), newest first */
  get notifications(): readonly InboxNotification[] {
    return this.held;
  }

  connect(): Promise<Frame<"welcome">> {
    const welcome = new Promise<Frame<"welcome">>((resolve, reject) => {
      const offW = this.on("welcome", (w) => (offW(), offE(), resolve(w)));
      const offE = this.on("error", (e) => {
        if (e.fatal) (offW(), offE(), reject(Object.assign(new Error(e.message), { code: e.code })));
      });
    });
    if (this._state === "idle") void this.open();
    return welcome;
  }

  close(): void {
    if (this.isClosed()) return;
    this.setState({ state: "closed" });
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= 1) ws.close(1000, "client closed");
  }

  /**
   * Marks notifications read (by ids, up to a seq, or all) over HTTP, which answers with the new count; every
   * connection of the user, this one included, also gets a `read` frame.
   */
  async markRead(req: ReadRequest): Promise<{ marked: number; unread: number }> {
    const res = await this.fetchFn(`${this.base()}/inbox/read`, {
      method: "POST",
      headers: { authorization: `Bearer ${await this.currentToken()}`, "content-type": "application/json" },
      body: JSON.stringify(req),
    });
    if (!res.ok) {
      const r = await refusalOf(res);
      throw Object.assign(new Error(r.message), { code: r.code, status: r.status });
    }
    const result = (await res.json()) as { marked: number; unread: number };
    this.applyRead(req, result.unread);
    return result;
  }

  markAllRead(): Promise<{ marked: number; unread: number }> {
    return this.markRead({ all: true });
  }

  /** A page of the inbox, newest first (GET /inbox). */
  async list(opts: { before?: number; limit?: number; unreadOnly?: boolean } = {}): Promise<InboxPage> {
    const url = new URL(`${this.base()}/inbox`);
    if (opts.before !== undefined) url.searchParams.set("before", String(opts.before));
    if (opts.limit !== undefined) url.searchParams.set("limit", String(opts.limit));
    if (opts.unreadOnly !== undefined) url.searchParams.set("unread", String(opts.unreadOnly));
    const res = await this.fetchFn(url, { headers: { authorization: `Bearer ${await this.currentToken()}` } });
    if (!res.ok) {
      const r = await refusalOf(res);
      throw Object.assign(new Error(r.message), { code: r.code, status: r.status });
    }
    return (await res.json()) as InboxPage;
  }

  private base(): string {
    return this.opts.baseUrl.replace(/\/+$/, "");
  }

  private async currentToken(): Promise<string> {
    if (!this.token) this.token = await resolveToken(this.opts.token, "connect");
    return this.token;
  }

  private userIdOf(token: string): string {
    if (this.opts.userId) return this.opts.userId;
    const part = token.split(".")[1] ?? "";
    try {
      const sub = (JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="))) as { sub?: unknown }).sub;
      if (typeof sub === "string") return sub;
    } catch {
      /* fall through */
    }
    throw new Error("the token has no `sub`; pass options.userId");
  }

  private async open(): Promise<void> {
    if (this.isClosed()) return;
    this.setState({ state: this.attempt > 0 ? "reconnecting" : "connecting", attempt: this.attempt });
    let url: string;
    try {
      this.token = await resolveToken(this.opts.token, this.tokenReason);
      const u = new URL(`${this.base()}/parties/inbox/${encodeURIComponent(this.userIdOf(this.token))}`);
      u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
      url = u.toString();
    } catch (error) {
      return this.fail("token_unavailable", `could not get a sign-in token: ${(error as Error).message}`);
    }
    if (this.isClosed()) return;
    const ws = new this.Ws(url, subprotocols(this.token));
    this.ws = ws;
    let opened = false;
    ws.onopen = () => (opened = true);
    ws.onmessage = (ev) => {
      if (typeof ev.data !== "string") return;
      try {
        this.handle(JSON.parse(ev.data) as InboxServerFrame);
      } catch {
        /* not JSON: ignored */
      }
    };
    // A refused upgrade ends the attempt at its error (Node's undici reports the close much later).
    ws.onerror = () => {
      if (!opened) void ended();
    };
    ws.onclose = () => void ended();
    const ended = async () => {
      if (this.ws !== ws) return;
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      this.ws = null;
      if (this.isClosed()) return;
      if (!opened) {
        const res = await this.fetchFn(`${this.base()}/inbox/unread`, { headers: { authorization: `Bearer ${this.token}` } }).catch(() => null);
        if (res && !res.ok) {
          const r = await refusalOf(res);
          if (r.status !== 401 || typeof this.opts.token === "string") return this.fail(r.code, r.message);
          this.emit("error", { code: r.code, message: r.message, fatal: false });
          this.tokenReason = "refused";
        }
      }
      this.attempt++;
      const delay = backoffDelay(this.attempt, { ...DEFAULT_BACKOFF, ...this.opts.backoff });
      this.setState({ state: "reconnecting", attempt: this.attempt, retryInMs: delay });
      if (this.tokenReason === "connect") this.tokenReason = "reconnect";
      this.retryTimer = setTimeout(() => ((this.retryTimer = null), void this.open()), delay);
    };
  }

  private fail(code: string, message: string): void {
    this.emit("error", { code, message, fatal: true });
    this.close();
  }

  private setState(change: StatusChange): void {
    if (this.isClosed()) return;
    this._state = change.state;
    this.emit("status", change);
  }

  private setUnread(n: number): void {
    if (n === this._unread) return;
    this._unread = n;
    this.emit("unread", n);
  }

  private handle(frame: InboxServerFrame): void {
    switch (frame.type) {
      case "welcome":
        this.attempt = 0;
        this.tokenReason = "reconnect";
        this.setState({ state: "open" });
        this.held = [...(frame.notifications as InboxNotification[])];
        this.emit("welcome", frame);
        this.emit("notifications", this.held);
        this._unread = -1; // always announce the welcome's count
        return this.setUnread(frame.unread);
      case "notification":
      {
        const notification = frame.notification as InboxNotification;
        if (!this.held.some((n) => n.id === notification.id)) this.held = [notification, ...this.held];
        this.emit("notification", notification);
        this.emit("notifications", this.held);
        return this.setUnread(frame.unread);
      }
      case "read":
        return this.applyRead({ ...(frame.ids ? { ids: frame.ids } : {}), ...(frame.upTo !== undefined ? { upTo: frame.upTo } : {}) }, frame.unread);
      case "progress":
        return this.emit("progress", frame);
      case "error":
        return this.emit("error", { code: frame.code, message: frame.message, fatal: false });
      case "list":
        return;
    }
  }

  private applyRead(req: Partial<ReadRequest>, unread: number): void {
    const isRead = (n: InboxNotification) => req.all === true || (req.ids?.includes(n.id) ?? false) || (req.upTo !== undefined && n.seq <= req.upTo);
    this.held = this.held.map((n) => (!n.read && isRead(n) ? { ...n, read: true } : n));
    this.emit("notifications", this.held);
    this.setUnread(unread);
  }
}
