// WebSocket test clients for tests inside workerd: room clients that connect through the front Worker with a
// real JWT, inbox clients that connect straight to the Inbox object (as the Worker would after its checks),
// and the ids, tokens and envelopes tests need. Frames are checked against the published protocols and
// queued by test/helpers/frame-queue.ts (the same bookkeeping as the Node-side wire clients).
import { env as workerEnv, exports } from "cloudflare:workers";
import { type Envelope, makeEvent } from "../../shared/envelope.ts";
import { inboxServerFrame, type InboxServerFrame } from "../../shared/protocol/inbox.ts";
import { type ServerFrameOf, serverFrame, type SingleServerFrame, unbatch } from "../../shared/protocol/room.ts";
import { type CloseInfo, type FrameQueue, frameQueue } from "../../test/helpers/frame-queue.ts";
import { type MintOptions, mintHs256 } from "../../test/helpers/jwt.ts";
import { encodeVerifiedUser, VERIFIED_CLAIMS_HEADER } from "../src/auth/claims.ts";

/** The Worker's bindings (typed through worker-globals.d.ts). */
export const env = workerEnv;

export type SingleType = SingleServerFrame["type"];
export type FrameOf<T extends SingleType> = ServerFrameOf<T>;

export interface SocketClient<F extends { type: string }> extends Omit<FrameQueue<F>, "message" | "close"> {
  ws: WebSocket;
  send(frame: unknown): void;
  /** closes with 1000: a close without a code (1005) gets no close frame back from workerd */
  close(): void;
}
export type RoomClient = SocketClient<SingleServerFrame>;
export type InboxClient = SocketClient<InboxServerFrame>;

function wrap<F extends { type: string }>(ws: WebSocket, queue: FrameQueue<F>): SocketClient<F> {
  let closeInfo: CloseInfo | null = null;
  ws.addEventListener("close", (e) => queue.close((closeInfo = { code: e.code, reason: e.reason })));
  ws.addEventListener("message", (e) => queue.message(e.data as string));
  ws.accept();
  const { message: _m, close: _c, ...rest } = queue;
  return {
    ...rest,
    ws,
    send(frame) {
      ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
    },
    close() {
      if (!closeInfo) ws.close(1000, "done");
    },
  };
}

/** A room client: `batch` frames unpacked; `next` skips (and keeps) frames of other types. */
export function wrapSocket(ws: WebSocket): RoomClient {
  return wrap(ws, frameQueue<SingleServerFrame>({ parse: (data) => unbatch(serverFrame.parse(JSON.parse(data))) }));
}

/** An inbox client: `next` takes frames strictly in order (an unexpected frame fails the test). */
export function wrapInboxSocket(ws: WebSocket): InboxClient {
  return wrap(ws, frameQueue<InboxServerFrame>({ parse: (data) => [inboxServerFrame.parse(JSON.parse(data))], strict: true }));
}

// ---- rooms ---------------------------------------------------------------------------------------------

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
const unique = (label: string) => `${label}-${Date.now().toString(36)}-${(counter++).toString(36)}`;

/** A unique room id per call, so tests never share a room. */
export function newRoom(label = "room"): string {
  return unique(label);
}

// ---- inboxes -------------------------------------------------------------------------------------------

export function verifiedUser(userId: string, name?: string) {
  return { userId, role: "member" as const, exp: Math.floor(Date.now() / 1000) + 3600, ...(name && { name }) };
}

/** Connects straight to the user's Inbox object, as the front Worker would after verifying `asUser`'s JWT. */
export async function connectDirect(userId: string, asUser: string | null = userId): Promise<Response> {
  const headers = new Headers({ Upgrade: "websocket" });
  if (asUser !== null) headers.set(VERIFIED_CLAIMS_HEADER, encodeVerifiedUser(verifiedUser(asUser, `Name of ${asUser}`)));
  return env.Inbox.getByName(userId).fetch(`http://edge/parties/inbox/${userId}?_pk=${crypto.randomUUID()}`, { headers });
}

export async function openClient(userId: string): Promise<InboxClient> {
  const res = await connectDirect(userId);
  if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade refused: ${res.status} ${await res.text()}`);
  return wrapInboxSocket(res.webSocket);
}

/** An HS256 JWT for `sub`, signed with the test JWT_SECRET (as the app's identity provider would). */
export function jwtFor(sub: string): Promise<string> {
  return tokenFor(sub);
}

/** A unique user id per call, so tests never share an inbox. */
export function newUser(label = "u"): string {
  return unique(label);
}

export function notificationEvent(userId: string, extra: { id?: string; notificationId?: string; title?: string } = {}): Envelope<"notification.requested"> {
  return makeEvent(
    "notification.requested",
    { notificationId: extra.notificationId ?? `ntf-${crypto.randomUUID()}`, userId, title: extra.title ?? "Hello", body: "body text", kind: "mention" },
    { source: "test", subject: `user/${userId}`, ...(extra.id && { id: extra.id }) },
  );
}
