// Many WebSocket clients of one room, counting chat deliveries cheaply. The clients share this process's
// two cores with the server under test, so each received frame is scanned for `"clientId":"<tag><seq>"`
// rather than JSON-parsed: a coalesced `batch` frame then counts once per message inside it, which is the
// unwrapping the bench needs, at a fraction of the client CPU.
import { performance } from "node:perf_hooks";
import WebSocket from "ws";

const KEY = '"clientId":"';

export interface ConnectSpec {
  url: string;
  headers?: Record<string, string>;
}

/** Opens one socket and resolves on its first frame (the server's welcome), or rejects with why it failed. */
export function openClient(spec: ConnectSpec, onFrame: (text: string) => void, timeoutMs = 30_000): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(spec.url, { headers: spec.headers, perMessageDeflate: false });
    const timer = setTimeout(() => fail(new Error(`no welcome within ${timeoutMs} ms`)), timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on("error", () => {});
      ws.terminate();
      reject(error);
    };
    ws.once("unexpected-response", (_req, res) => fail(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    ws.once("error", fail);
    ws.once("close", (code, reason) => fail(new Error(`closed before welcome: ${code} ${reason.toString()}`)));
    ws.once("message", (data) => {
      clearTimeout(timer);
      ws.removeAllListeners("close");
      ws.removeAllListeners("error");
      ws.on("error", () => {}); // counted through missing deliveries, not thrown
      ws.on("message", (d) => onFrame((d as Buffer).toString("latin1")));
      onFrame((data as Buffer).toString("latin1"));
      resolve(ws);
    });
  });
}

/** Clients that count deliveries of messages whose clientId starts with the current run's tag. */
export class Fleet {
  readonly sockets: WebSocket[] = [];
  private tag = "\u0000";
  private count = 0;
  private target = Number.POSITIVE_INFINITY;
  private onDone: (() => void) | null = null;
  /** send time (performance.now) of each seq of the current run, when recording latency */
  private sentAt: Float64Array | null = null;
  latencies: number[] = [];
  lastDeliveryAt = 0;

  readonly onFrame = (text: string): void => {
    let i = text.indexOf(KEY);
    if (i < 0) return;
    const now = performance.now();
    let hits = 0;
    while (i >= 0) {
      i += KEY.length;
      if (text.startsWith(this.tag, i)) {
        hits++;
        if (this.sentAt) {
          const seq = Number.parseInt(text.slice(i + this.tag.length, i + this.tag.length + 10), 10);
          this.latencies.push(now - this.sentAt[seq]!);
        }
      }
      i = text.indexOf(KEY, i);
    }
    if (hits === 0) return;
    this.count += hits;
    this.lastDeliveryAt = now;
    if (this.count >= this.target) this.onDone?.();
  };

  /**
   * Connects `n` clients, `concurrency` at a time. Stops early at the first failure, at `stopAt`
   * (performance.now() time) or when `onProgress` returns a reason to stop; says why.
   */
  async connect(
    n: number,
    specFor: (i: number) => ConnectSpec,
    opts: { concurrency?: number; stopAt?: number; onProgress?: (connected: number) => string | undefined } = {},
  ): Promise<{ connected: number; error?: string }> {
    const concurrency = opts.concurrency ?? 50;
    const stopAt = opts.stopAt ?? Number.POSITIVE_INFINITY;
    let next = 0;
    let error: string | undefined;
    const worker = async () => {
      while (next < n && !error && performance.now() < stopAt) {
        const i = next++;
        try {
          this.sockets.push(await openClient(specFor(i), this.onFrame));
          error ??= opts.onProgress?.(this.sockets.length);
        } catch (e) {
          error ??= `client ${i}: ${(e as Error).message}`;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
    return error === undefined ? { connected: this.sockets.length } : { connected: this.sockets.length, error };
  }

  /**
   * Starts counting a run: deliveries of clientIds `<tag><seq>`; resolves when `expected` have arrived
   * (or at `timeoutMs`, with what arrived: a shortfall means lost deliveries and is reported as such).
   */
  run(tag: string, expected: number, timeoutMs: number, sentAt: Float64Array | null = null): { done: Promise<{ count: number; complete: boolean }> } {
    this.tag = tag;
    this.count = 0;
    this.target = expected;
    this.sentAt = sentAt;
    this.latencies = [];
    this.lastDeliveryAt = 0;
    const done = new Promise<{ count: number; complete: boolean }>((resolve) => {
      const timer = setTimeout(() => finish(false), timeoutMs);
      const finish = (complete: boolean) => {
        clearTimeout(timer);
        this.onDone = null;
        this.target = Number.POSITIVE_INFINITY;
        resolve({ count: this.count, complete });
      };
      this.onDone = () => finish(true);
    });
    return { done };
  }

  async close(): Promise<void> {
    await Promise.all(
      this.sockets.map(
        (ws) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === WebSocket.CLOSED) return resolve();
            const timer = setTimeout(() => {
              ws.terminate();
              resolve();
            }, 5_000);
            ws.once("close", () => {
              clearTimeout(timer);
              resolve();
            });
            // With a code: a close without one (1005) gets no close frame back, so that close would hang.
            ws.close(1000, "bench done");
          }),
      ),
    );
    this.sockets.length = 0;
  }
}
