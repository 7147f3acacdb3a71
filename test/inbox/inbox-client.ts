// Node-side inbox client for wire tests: a `ws` WebSocket whose frames are checked against the published
// inbox protocol, read in order by type.
import WebSocket from "ws";
import { type InboxServerFrame, inboxServerFrame } from "../../shared/protocol/inbox.ts";

const FRAME_TIMEOUT_MS = 15_000;

export interface InboxWireClient {
  /** the next frame, which must be of `type` */
  next<T extends InboxServerFrame["type"]>(type: T): Promise<Extract<InboxServerFrame, { type: T }>>;
  send(frame: unknown): void;
  close(): Promise<void>;
}

export function openInbox(url: string, token: string): Promise<InboxWireClient> {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
  const queue: InboxServerFrame[] = [];
  const waiters = new Set<() => void>();
  let closed: string | null = null;
  const wake = () => [...waiters].forEach((w) => w());
  const closedPromise = new Promise<void>((resolve) =>
    ws.on("close", (code, reason) => {
      closed = `${code} ${reason.toString()}`;
      wake();
      resolve();
    }),
  );
  ws.on("message", (data) => {
    queue.push(inboxServerFrame.parse(JSON.parse(data.toString())));
    wake();
  });
  const client: InboxWireClient = {
    next(type) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const frame = queue.shift();
          if (frame) {
            done();
            if (frame.type === type) resolve(frame as never);
            else reject(new Error(`expected a '${type}' frame, got ${JSON.stringify(frame)}`));
          } else if (closed) {
            done();
            reject(new Error(`socket closed (${closed}) while waiting for '${type}'`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no '${type}' frame within ${FRAME_TIMEOUT_MS} ms`));
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
      ws.send(JSON.stringify(frame));
    },
    async close() {
      // With 1000: a close without a code gets no close frame back and hangs (STACK-NOTES).
      if (ws.readyState === WebSocket.OPEN) ws.close(1000, "done");
      if (ws.readyState !== WebSocket.CLOSED) await closedPromise;
    },
  };
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(client));
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused with ${res.statusCode}`)));
    ws.once("error", reject);
  });
}
