// Test support for room tests inside workerd (not a test file): clients that connect through the front
// Worker with a real JWT, unpack `batch` frames, check every frame against the published protocol, and wait
// for frames by type with a clear message on timeout.
import { env as workerEnv, exports } from "cloudflare:workers";
import { type ServerFrame, type ServerFrameOf, serverFrame, type SingleServerFrame, unbatch } from "../../../shared/protocol/room.ts";
import { type MintOptions, mintHs256 } from "../../../test/helpers/jwt.ts";

/** The Worker's bindings (typed through worker-globals.d.ts). */
export const env = workerEnv;

const FRAME_TIMEOUT_MS = 5_000;

export type SingleType = SingleServerFrame["type"];
export type FrameOf<T extends SingleType> = ServerFrameOf<T>;

export interface RoomClient {
  ws: WebSocket;
  /** every frame received so far, batches unpacked, in order */
  received: SingleServerFrame[];
  /** raw WebSocket messages received (to see batching) */
  rawCount(): number;
  /** the next not-yet-taken frame of `type` matching `where`, skipping (and keeping) other frames */
  next<T extends SingleType>(type: T, where?: (f: FrameOf<T>) => boolean): Promise<FrameOf<T>>;
  send(frame: unknown): void;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

export function wrapSocket(ws: WebSocket): RoomClient {
  const received: SingleServerFrame[] = [];
  const taken = new Set<number>();
  const waiters: (() => void)[] = [];
  let raw = 0;
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
    raw++;
    // Every message the room sends must match the published protocol.
    const frame: ServerFrame = serverFrame.parse(JSON.parse(e.data as string));
    received.push(...unbatch(frame));
    wake();
  });
  ws.accept();
  return {
    ws,
    received,
    rawCount: () => raw,
    closed,
    async next(type, where) {
      const deadline = Date.now() + FRAME_TIMEOUT_MS;
      for (;;) {
        const index = received.findIndex((f, i) => !taken.has(i) && f.type === type && (!where || where(f as never)));
        if (index >= 0) {
          taken.add(index);
          return received[index] as never;
        }
        if (closeInfo) throw new Error(`socket closed (${closeInfo.code} ${closeInfo.reason}) while waiting for a '${type}' frame; got ${JSON.stringify(received).slice(0, 600)}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no matching '${type}' frame within ${FRAME_TIMEOUT_MS} ms; got ${JSON.stringify(received).slice(0, 600)}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    send(frame) {
      ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
    },
    close() {
      // Close with a code: a close without one (1005) gets no close frame back (STACK-NOTES).
      if (!closeInfo) ws.close(1000, "done");
    },
  };
}

export function tokenFor(sub: string, opts: Omit<MintOptions, "sub"> = {}): Promise<string> {
  return mintHs256(env.JWT_SECRET!, { sub, ...opts });
}

/** An upgrade request through the front Worker (the real entry: JWT check, routing). */
export function upgrade(path: string, init: { token?: string; headers?: Record<string, string> } = {}): Promise<Response> {
  const headers = new Headers({ Upgrade: "websocket", ...init.headers });
  if (init.token) headers.set("authorization", `Bearer ${init.token}`);
  return exports.default.fetch(`http://edge${path}`, { headers });
}

export interface JoinOptions extends Omit<MintOptions, "sub"> {
  role?: "viewer" | "member" | "moderator" | "broadcaster";
  name?: string;
  since?: number;
}

/** Connects `userId` to `roomId` through the front Worker and returns the client with its welcome frame. */
export async function join(roomId: string, userId: string, opts: JoinOptions = {}): Promise<RoomClient & { welcome: FrameOf<"welcome"> }> {
  const { role, name, since, ...mint } = opts;
  const claims = { ...mint.claims, ...(role && { role }), ...(name && { name }) };
  const token = await tokenFor(userId, { ...mint, claims });
  const res = await upgrade(`/parties/room/${roomId}${since !== undefined ? `?since=${since}` : ""}`, { token });
  if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade refused: ${res.status} ${await res.text()}`);
  const client = wrapSocket(res.webSocket);
  const welcome = await client.next("welcome");
  return Object.assign(client, { welcome });
}

let counter = 0;
/** A unique room id per call, so tests never share a room. */
export function newRoom(label = "room"): string {
  return `${label}-${Date.now().toString(36)}-${(counter++).toString(36)}`;
}
