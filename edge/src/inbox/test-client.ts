// Test support for inbox tests inside workerd (not a test file): WebSocket clients that queue frames,
// identities, JWTs and envelopes. Waiting is always on a frame, with a message saying which one.
import { env as workerEnv } from "cloudflare:workers";
import { type Envelope, makeEvent } from "../../../shared/envelope.ts";
import { type InboxServerFrame, inboxServerFrame } from "../../../shared/protocol/inbox.ts";
import { mintHs256 } from "../../../test/helpers/jwt.ts";
import { encodeVerifiedUser, VERIFIED_CLAIMS_HEADER } from "../auth/claims.ts";

/** The Worker's bindings (typed through worker-globals.d.ts). */
export const env = workerEnv;

const FRAME_TIMEOUT_MS = 5_000;

export interface TestClient {
  ws: WebSocket;
  /** the next frame (of `type`, skipping none: a different type is a failure) */
  next<T extends InboxServerFrame["type"]>(type: T): Promise<Extract<InboxServerFrame, { type: T }>>;
  send(frame: unknown): void;
  closed: Promise<{ code: number; reason: string }>;
  /** waits for the close, then returns every frame not yet taken with next() */
  rest(): Promise<InboxServerFrame[]>;
  close(): void;
}

export function wrapSocket(ws: WebSocket): TestClient {
  const queue: InboxServerFrame[] = [];
  const waiters: (() => void)[] = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  let closeInfo: { code: number; reason: string } | null = null;
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.addEventListener("close", (e) => {
      closeInfo = { code: e.code, reason: e.reason };
      resolve(closeInfo);
      wake();
    }),
  );
  ws.addEventListener("message", (e) => {
    // Every frame the inbox sends must match the published protocol.
    queue.push(inboxServerFrame.parse(JSON.parse(e.data as string)));
    wake();
  });
  ws.accept();
  return {
    ws,
    closed,
    async next(type) {
      const deadline = Date.now() + FRAME_TIMEOUT_MS;
      while (queue.length === 0) {
        if (closeInfo) throw new Error(`socket closed (${closeInfo.code} ${closeInfo.reason}) while waiting for a '${type}' frame`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no '${type}' frame within ${FRAME_TIMEOUT_MS} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      const frame = queue.shift()!;
      if (frame.type !== type) throw new Error(`expected a '${type}' frame, got ${JSON.stringify(frame)}`);
      return frame as never;
    },
    send(frame) {
      ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
    },
    async rest() {
      await closed;
      return queue.splice(0);
    },
    close() {
      // Close with a code: a close without one (1005) gets no close frame back (STACK-NOTES).
      ws.close(1000, "done");
    },
  };
}

export function verifiedUser(userId: string, name?: string) {
  return { userId, role: "member" as const, exp: Math.floor(Date.now() / 1000) + 3600, ...(name && { name }) };
}

/** Connects straight to the user's Inbox object, as the front Worker would after verifying `asUser`'s JWT. */
export async function connectDirect(userId: string, asUser: string | null = userId): Promise<Response> {
  const headers = new Headers({ Upgrade: "websocket" });
  if (asUser !== null) headers.set(VERIFIED_CLAIMS_HEADER, encodeVerifiedUser(verifiedUser(asUser, `Name of ${asUser}`)));
  return env.Inbox.getByName(userId).fetch(`http://edge/parties/inbox/${userId}?_pk=${crypto.randomUUID()}`, { headers });
}

export async function openClient(userId: string): Promise<TestClient> {
  const res = await connectDirect(userId);
  if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade refused: ${res.status} ${await res.text()}`);
  return wrapSocket(res.webSocket);
}

/** An HS256 JWT for `sub`, signed with the test JWT_SECRET (as the app's identity provider would). */
export function jwtFor(sub: string): Promise<string> {
  return mintHs256(env.JWT_SECRET!, { sub });
}

let counter = 0;
/** A unique user id per call, so tests never share an inbox. */
export function newUser(label = "u"): string {
  return `${label}-${Date.now().toString(36)}-${(counter++).toString(36)}`;
}

export function notificationEvent(userId: string, extra: { id?: string; notificationId?: string; title?: string } = {}): Envelope<"notification.requested"> {
  return makeEvent(
    "notification.requested",
    { notificationId: extra.notificationId ?? `ntf-${crypto.randomUUID()}`, userId, title: extra.title ?? "Hello", body: "body text", kind: "mention" },
    { source: "test", subject: `user/${userId}`, ...(extra.id && { id: extra.id }) },
  );
}
