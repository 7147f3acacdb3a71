// A shard's (or relay's) WebSocket to the object above it. The lower object dials: a WebSocket is one ordered
// stream each way (the coordinator's frames reach a shard in the order it sent them), outgoing WebSocket
// messages are not billed while each RPC would be a request, and the coordinator makes no outgoing connections
// at all (it accepts hibernatable sockets and can sleep when the room is quiet). The price: an outgoing socket
// keeps the lower object in memory while it is open, which is what a live room wants anyway.
//
// A dropped link is dialled again with a growing delay; frames sent meanwhile wait (bounded) and go first.

const MAX_WAITING = 2000;

export interface UplinkOptions {
  /** opens the link: an upgrade request to the parent object */
  dial(): Promise<Response>;
  onMessage(text: string): void;
  /** after every (re)open, before waiting frames are flushed */
  onOpen?(): void;
  label: string;
}

export class Uplink {
  private ws: WebSocket | null = null;
  private dialing: Promise<void> | null = null;
  private waiting: string[] = [];
  private retryMs = 50;
  private stopped = false;
  private readonly opts: UplinkOptions;

  constructor(opts: UplinkOptions) {
    this.opts = opts;
  }

  get open(): boolean {
    return this.ws !== null;
  }

  /** Opens the link if it is not open; resolves once it is (or the attempt failed and a retry is scheduled). */
  ensure(): Promise<void> {
    this.stopped = false;
    if (this.ws) return Promise.resolve();
    this.dialing ??= this.dial().finally(() => (this.dialing = null));
    return this.dialing;
  }

  send(text: string): void {
    if (this.ws) {
      try {
        this.ws.send(text);
        return;
      } catch {
        this.dropped();
      }
    }
    if (this.waiting.length >= MAX_WAITING) this.waiting.shift();
    this.waiting.push(text);
    void this.ensure();
  }

  /** Closes the link and does not dial again. 1000 tells the parent nothing is lost; another code asks it to wake this object. */
  stop(code = 1000, reason = "no clients"): void {
    this.stopped = true;
    const ws = this.ws;
    this.ws = null;
    try {
      ws?.close(code, reason);
    } catch {
      // already closed
    }
  }

  private async dial(): Promise<void> {
    let res: Response;
    try {
      res = await this.opts.dial();
    } catch (error) {
      return this.retry(`dial failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    const ws = res.webSocket;
    if (res.status !== 101 || !ws) return this.retry(`dial refused: ${res.status}`);
    ws.accept();
    ws.addEventListener("message", (e) => this.opts.onMessage(typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data as ArrayBuffer)));
    ws.addEventListener("close", () => this.ws === ws && this.dropped());
    ws.addEventListener("error", () => this.ws === ws && this.dropped());
    this.ws = ws;
    this.retryMs = 50;
    this.opts.onOpen?.();
    const waiting = this.waiting;
    this.waiting = [];
    for (const text of waiting) this.send(text);
  }

  private dropped(): void {
    this.ws = null;
    if (!this.stopped) void this.ensure();
  }

  private retry(why: string): void {
    console.warn(`${this.opts.label}: link ${why}; retrying in ${this.retryMs} ms`);
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, 2000);
    setTimeout(() => {
      if (!this.stopped && !this.ws) void this.ensure();
    }, delay);
  }
}
