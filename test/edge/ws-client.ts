// Node-side room clients for wire tests against a real edge (wrangler dev): a `ws` WebSocket that unpacks
// `batch` frames, checks every frame against the published protocol, and waits for frames by type.
// Plus a raw upgrade over node:http, because Node's WebSocket clients hide the status and body of a refusal.
import { request } from "node:http";
import { randomBytes } from "node:crypto";
import WebSocket from "ws";
import { type ServerFrameOf, serverFrame, type SingleServerFrame, unbatch } from "../../shared/protocol/room.ts";

const FRAME_TIMEOUT_MS = 15_000;

export interface WireClient {
  ws: WebSocket;
  received: SingleServerFrame[];
  next<T extends SingleServerFrame["type"]>(type: T, where?: (f: ServerFrameOf<T>) => boolean): Promise<ServerFrameOf<T>>;
  send(frame: unknown): void;
  closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

export function openClient(url: string, opts: { protocols?: string[]; headers?: Record<string, string> } = {}): Promise<WireClient> {
  const ws = new WebSocket(url, opts.protocols ?? [], { headers: opts.headers ?? {} });
  const received: SingleServerFrame[] = [];
  const taken = new Set<number>();
  const waiters = new Set<() => void>();
  let closeInfo: { code: number; reason: string } | null = null;
  const wake = () => [...waiters].forEach((w) => w());
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code, reason) => {
      closeInfo = { code, reason: reason.toString() };
      resolve(closeInfo);
      wake();
    }),
  );
  ws.on("message", (data) => {
    received.push(...unbatch(serverFrame.parse(JSON.parse(data.toString()))));
    wake();
  });
  const client: WireClient = {
    ws,
    received,
    closed,
    next(type, where) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const i = received.findIndex((f, idx) => !taken.has(idx) && f.type === type && (!where || where(f as never)));
          if (i >= 0) {
            taken.add(i);
            done();
            resolve(received[i] as never);
          } else if (closeInfo) {
            done();
            reject(new Error(`socket closed (${closeInfo.code} ${closeInfo.reason}) while waiting for '${type}'`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no '${type}' frame within ${FRAME_TIMEOUT_MS} ms; got ${JSON.stringify(received).slice(0, 500)}`));
        }, FRAME_TIMEOUT_MS);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    send(frame) {
      ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
    },
    async close() {
      // Close with 1000: a close without a code (1005) gets no close frame back and hangs (STACK-NOTES).
      if (ws.readyState === WebSocket.OPEN) ws.close(1000, "done");
      if (ws.readyState !== WebSocket.CLOSED) await closed;
    },
  };
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(client));
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused with ${res.statusCode}`)));
    ws.once("error", reject);
  });
}

export interface RawUpgradeResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Sends a WebSocket upgrade and returns the HTTP answer when it is a refusal (a 101 is closed at once). */
export function rawUpgrade(url: string, headers: Record<string, string> = {}): Promise<RawUpgradeResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
        ...headers,
      },
    });
    req.on("response", (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 101, headers: res.headers, body: "" });
    });
    req.on("error", reject);
    req.end();
  });
}
