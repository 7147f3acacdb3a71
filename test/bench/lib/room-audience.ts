// An audience of room clients spread over worker threads, for bench:bigroom. Thousands of sockets in one event
// loop make the harness itself a queue: a frame sent to 8,000 sockets reaches the last of them only after the
// loop has read the 7,999 before it. Each thread holds a slice of the clients and reads its own sockets.
//
// Every client checks every chat message it gets (in order, once) and, while recording, its latency end to end:
// the sender puts its send time in the text (`b <ms>`, performance.timeOrigin + performance.now(), one clock for
// every thread of the process), the receiver subtracts it from its own receipt time. The message's `at` (the
// coordinator's or room's Date.now() when it stored it) splits that into up (send -> stored) and down (stored ->
// receipt), to the millisecond.
import { performance } from "node:perf_hooks";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import type WebSocket from "ws";
import { mintHs256 } from "../../helpers/jwt.ts";
import { openClient } from "./fleet.ts";

/** What the main thread asks of a thread. */
type Command =
  | { t: "connect"; url: string; from: number; to: number; chatters: number; concurrency: number; secret: string }
  | { t: "traffic"; on: boolean }
  | { t: "record"; on: boolean; countFrom?: number }
  | { t: "report" }
  | { t: "close" };

export interface SliceReport {
  clients: number;
  /** send -> receipt, ms, for every message received while recording */
  latencies: Float64Array;
  up: Float64Array;
  down: Float64Array;
  /** messages with id >= countFrom received, in order, once (summed over clients) */
  inRange: number;
  duplicated: number;
  reordered: number;
  /** highest message id seen by any of this slice's chatters, and the lowest last id of any client */
  chattersLastId: number;
  minLastId: number;
  /** event loop utilization of this thread while recording (1 = the thread was the bound) */
  elu: number;
}

const nowMs = () => performance.timeOrigin + performance.now();
const MSG_KEY = '"message":{"id":';
const TEXT_KEY = '"text":"b ';
const AT_KEY = '"at":';

class Client {
  ws!: WebSocket;
  lastId = 0;
  duplicated = 0;
  reordered = 0;
  inRange = 0;
  private readonly s: SliceState;
  constructor(s: SliceState) {
    this.s = s;
  }

  readonly onFrame = (text: string): void => {
    let i = text.indexOf(MSG_KEY);
    if (i < 0) return;
    const now = nowMs();
    while (i >= 0) {
      i += MSG_KEY.length;
      let id = 0;
      while (text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) id = id * 10 + text.charCodeAt(i++) - 48;
      if (id === this.lastId) this.duplicated++;
      else if (id < this.lastId) this.reordered++;
      else {
        this.lastId = id;
        const s = this.s;
        if (id >= s.countFrom) this.inRange++;
        const t = text.indexOf(TEXT_KEY, i);
        if (t > 0 && s.recording) {
          const start = t + TEXT_KEY.length;
          const end = text.indexOf('"', start);
          const sent = Number.parseFloat(text.slice(start, end));
          s.latencies.push(now - sent);
          const a = text.indexOf(AT_KEY, end);
          if (a > 0) {
            const at = Number.parseInt(text.slice(a + AT_KEY.length, a + AT_KEY.length + 16), 10);
            s.up.push(at - sent);
            s.down.push(now - at);
          }
        }
      }
      i = text.indexOf(MSG_KEY, i);
    }
  };
}

interface SliceState {
  countFrom: number;
  recording: boolean;
  latencies: number[];
  up: number[];
  down: number[];
}

function runSlice(): void {
  const port = parentPort!;
  const s: SliceState = { countFrom: Number.MAX_SAFE_INTEGER, recording: false, latencies: [], up: [], down: [] };
  const clients: Client[] = [];
  const chatters: Client[] = [];
  const timers: ReturnType<typeof setInterval>[] = [];
  let elu0 = performance.eventLoopUtilization();

  const stopTraffic = () => timers.splice(0).forEach((t) => clearInterval(t));
  const startTraffic = () => {
    stopTraffic();
    const react = JSON.stringify({ type: "react", emoji: "🔥" });
    // Reactors in 20 groups, one group every 50 ms: once a second each, without a timer per socket.
    const reactors = clients.filter((c) => !chatters.includes(c));
    let tick = 0;
    timers.push(
      setInterval(() => {
        const g = tick++ % 20;
        for (let i = g; i < reactors.length; i += 20) reactors[i]!.ws.send(react);
      }, 50),
    );
    // Chatters once a second each, staggered over the second.
    chatters.forEach((c, k) => {
      const start = setTimeout(() => {
        const send = () => c.ws.send(JSON.stringify({ type: "send", text: `b ${nowMs()}` }));
        send();
        timers.push(setInterval(send, 1000));
      }, (k * 1000) / Math.max(1, chatters.length));
      timers.push(start as unknown as ReturnType<typeof setInterval>);
    });
  };

  port.on("message", async (cmd: Command) => {
    try {
      switch (cmd.t) {
        case "connect": {
          const specs = await Promise.all(
            Array.from({ length: cmd.to - cmd.from }, async (_, k) => {
              const i = cmd.from + k;
              const chatter = i < cmd.chatters;
              const token = await mintHs256(cmd.secret, { sub: `${chatter ? "chat" : "viewer"}-${i}`, claims: { role: chatter ? "member" : "viewer" } });
              return { chatter, spec: { url: cmd.url, headers: { authorization: `Bearer ${token}` } } };
            }),
          );
          let next = 0;
          let failure: string | undefined;
          await Promise.all(
            Array.from({ length: cmd.concurrency }, async () => {
              while (next < specs.length && !failure) {
                const { chatter, spec } = specs[next++]!;
                const c = new Client(s);
                try {
                  c.ws = await openClient(spec, c.onFrame, 60_000);
                } catch (e) {
                  failure ??= (e as Error).message;
                  continue;
                }
                clients.push(c);
                if (chatter) chatters.push(c);
              }
            }),
          );
          return port.postMessage(failure ? { t: "error", message: `connecting stopped at ${clients.length} clients: ${failure}` } : { t: "ok", clients: clients.length });
        }
        case "traffic":
          if (cmd.on) startTraffic();
          else stopTraffic();
          return port.postMessage({ t: "ok" });
        case "record":
          if (cmd.countFrom !== undefined) {
            s.countFrom = cmd.countFrom;
            for (const c of clients) c.duplicated = c.reordered = c.inRange = 0;
          }
          if (cmd.on) {
            s.latencies = [];
            s.up = [];
            s.down = [];
            elu0 = performance.eventLoopUtilization();
          }
          s.recording = cmd.on;
          return port.postMessage({ t: "ok" });
        case "report": {
          const report: SliceReport = {
            clients: clients.length,
            latencies: Float64Array.from(s.latencies),
            up: Float64Array.from(s.up),
            down: Float64Array.from(s.down),
            inRange: clients.reduce((n, c) => n + c.inRange, 0),
            duplicated: clients.reduce((n, c) => n + c.duplicated, 0),
            reordered: clients.reduce((n, c) => n + c.reordered, 0),
            chattersLastId: chatters.reduce((m, c) => Math.max(m, c.lastId), 0),
            minLastId: clients.reduce((m, c) => Math.min(m, c.lastId), Number.MAX_SAFE_INTEGER),
            elu: performance.eventLoopUtilization(elu0).utilization,
          };
          return port.postMessage({ t: "report", report }, [report.latencies.buffer as ArrayBuffer, report.up.buffer as ArrayBuffer, report.down.buffer as ArrayBuffer]);
        }
        case "close":
          stopTraffic();
          for (const c of clients) {
            try {
              c.ws.close(1000, "bench done");
            } catch {
              // closing
            }
          }
          await new Promise((r) => setTimeout(r, 500));
          for (const c of clients) c.ws.terminate();
          clients.length = 0;
          chatters.length = 0;
          return port.postMessage({ t: "ok" });
      }
    } catch (error) {
      port.postMessage({ t: "error", message: (error as Error).stack ?? String(error) });
    }
  });
}

/** The main thread's handle on the threads: every call goes to all of them and waits for all answers. */
export class Audience {
  private readonly workers: Worker[];
  private connected = 0;
  private readonly url: string;
  private readonly secret: string;
  private readonly chatters: number;

  constructor(threads: number, opts: { url: string; secret: string; chatters: number }) {
    this.workers = Array.from({ length: threads }, () => new Worker(import.meta.filename, { workerData: { slice: true } }));
    this.url = opts.url;
    this.secret = opts.secret;
    this.chatters = opts.chatters;
  }

  get size(): number {
    return this.connected;
  }

  private ask<T>(worker: Worker, cmd: Command): Promise<T> {
    return new Promise((resolve, reject) => {
      worker.once("message", (m: { t: string; message?: string }) => (m.t === "error" ? reject(new Error(m.message)) : resolve(m as T)));
      worker.postMessage(cmd);
    });
  }

  private all<T>(cmd: Command): Promise<T[]> {
    return Promise.all(this.workers.map((w) => this.ask<T>(w, cmd)));
  }

  /** Grows the audience to `total` clients (user indices continue; the first `chatters` users chat), spread over the threads. */
  async growTo(total: number, concurrency: number): Promise<void> {
    const add = total - this.connected;
    if (add <= 0) return;
    const per = Math.ceil(add / this.workers.length);
    await Promise.all(
      this.workers.map((w, k) => {
        const from = this.connected + k * per;
        const to = Math.min(total, from + per);
        if (to <= from) return Promise.resolve();
        return this.ask(w, { t: "connect", url: this.url, from, to, chatters: this.chatters, concurrency: Math.max(1, Math.ceil(concurrency / this.workers.length)), secret: this.secret });
      }),
    );
    this.connected = total;
  }

  traffic(on: boolean): Promise<unknown> {
    return this.all({ t: "traffic", on });
  }

  record(on: boolean, countFrom?: number): Promise<unknown> {
    return this.all({ t: "record", on, ...(countFrom !== undefined ? { countFrom } : {}) });
  }

  async report(): Promise<SliceReport[]> {
    return (await this.all<{ report: SliceReport }>({ t: "report" })).map((m) => m.report);
  }

  async close(): Promise<void> {
    await this.all({ t: "close" });
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

if (!isMainThread && (workerData as { slice?: boolean } | null)?.slice) runSlice();
