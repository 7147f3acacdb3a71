// Node-side WebSocket clients for wire tests against a real edge (wrangler dev): a `ws` WebSocket whose frames
// are checked against the published protocol and queued by frame-queue.ts (the same bookkeeping as the clients
// inside workerd). Room clients unpack `batch` frames and wait by type, skipping others; inbox clients read
// strictly in order. Plus a raw upgrade over node:http, because Node's WebSocket clients hide the status and
// body of a refusal.
import { randomBytes } from "node:crypto";
import { request } from "node:http";
import WebSocket from "ws";
import { type InboxServerFrame, inboxServerFrame } from "../../shared/protocol/inbox.ts";
import { serverFrame, type SingleServerFrame, unbatch } from "../../shared/protocol/room.ts";
import { type FrameQueue, frameQueue, type FrameQueueOptions } from "./frame-queue.ts";

const FRAME_TIMEOUT_MS = 15_000;

export interface WireClient<F extends { type: string } = SingleServerFrame> extends Omit<FrameQueue<F>, "message" | "close"> {
  ws: WebSocket;
  send(frame: unknown): void;
  /** closes with 1000 (a close without a code gets no close frame back and hangs) and waits for the close */
  close(): Promise<void>;
}
export type InboxWireClient = WireClient<InboxServerFrame>;

function openWire<F extends { type: string }>(url: string, queueOpts: FrameQueueOptions<F>, opts: { protocols?: string[]; headers?: Record<string, string> }): Promise<WireClient<F>> {
  const ws = new WebSocket(url, opts.protocols ?? [], { headers: opts.headers ?? {} });
  const queue = frameQueue<F>({ timeoutMs: FRAME_TIMEOUT_MS, ...queueOpts });
  ws.on("close", (code, reason) => queue.close({ code, reason: reason.toString() }));
  ws.on("message", (data) => queue.message(data.toString()));
  const { message: _m, close: _c, ...rest } = queue;
  const client: WireClient<F> = {
    ...rest,
    ws,
    send(frame) {
      ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
    },
    async close() {
      if (ws.readyState === WebSocket.OPEN) ws.close(1000, "done");
      if (ws.readyState !== WebSocket.CLOSED) await queue.closed;
    },
  };
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(client));
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused with ${res.statusCode}`)));
    ws.once("error", reject);
  });
}

/** A room client: `batch` frames unpacked; `next` skips (and keeps) frames of other types. */
export function openClient(url: string, opts: { protocols?: string[]; headers?: Record<string, string> } = {}): Promise<WireClient> {
  return openWire<SingleServerFrame>(url, { parse: (data) => unbatch(serverFrame.parse(JSON.parse(data))) }, opts);
}

/** An inbox client with a Bearer token: `next` takes frames strictly in order (an unexpected frame fails the test). */
export function openInbox(url: string, token: string): Promise<InboxWireClient> {
  return openWire<InboxServerFrame>(url, { parse: (data) => [inboxServerFrame.parse(JSON.parse(data))], strict: true }, { headers: { authorization: `Bearer ${token}` } });
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
