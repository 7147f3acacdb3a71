// A small room that grows big hands what it holds to the room's coordinator, then sends its clients on.
//
// Why this order, and what the client sees:
// 1. From the moment the room decides to grow (ROOM_SHARD_AT open connections), chat and moderation frames
//    are held instead of applied, so nothing changes the history while it is copied. Everything else (reactions,
//    comments, presence, signaling) keeps working in the small room meanwhile.
// 2. The history (every stored message, ids kept), the bans, the room info and the ids of the system events
//    already applied go to the coordinator in parts of HANDOVER_PAGE messages. The coordinator stores them in
//    the same tables a small room uses, so its ids continue where the small room's stopped.
// 3. The room marks itself grown (stored, never undone): from now on it answers every request with
//    409 `room_moved`, which the front Worker turns into a request to the room's shards or coordinator.
// 4. What was held goes to the coordinator, in order; it is stored before any client is sent on, so a client
//    that resumes finds its own message in its welcome (and does not send it again).
// 5. Every socket gets a `moved` frame and is closed with 4010 (a proxy can hold a server's close back until the
//    client sends; the frame is not held). A client reconnects to the same URL with `?since=<last id>`; a shard
//    serves the resume from the messages the coordinator took over: no gap, no repeat.
// If the coordinator cannot be reached in 2, nothing has changed: the held frames are applied in the small
// room, and it tries again later.
import type { ChatMessage, ClientFrame, RoomInfo } from "../../../shared/protocol/room.ts";
import type { AppliedLedger } from "../ledger/applied-ledger.ts";
import type { Ban, RoomStore } from "../rooms/room-store.ts";
import type { ConnState } from "../rooms/presence.ts";
import type { UpItem } from "./links.ts";

/** Messages per handover part (one RPC each; a message is at most a few KB). */
export const HANDOVER_PAGE = 500;
/** Most applied-event ids handed over (a room applies a few per broadcast; retries come within days). */
const HANDOVER_APPLIED_MAX = 10_000;
/** How long a room whose handover failed waits before it tries again, ms. */
export const GROW_RETRY_MS = 30_000;

/** One part of a small room's state, as the coordinator adopts it. The first part carries everything but messages. */
export interface HandoverPart {
  messages: ChatMessage[];
  bans?: Ban[];
  info?: RoomInfo;
  applied?: { id: string; at: number }[];
}

/** The parts of a room's state, read page by page as they are sent (nothing changes them meanwhile: see 1). */
export function* handoverParts(store: RoomStore, ledger: AppliedLedger, roomId: string): Generator<HandoverPart> {
  let after = 0;
  let first = true;
  for (;;) {
    const messages = store.from(after, HANDOVER_PAGE);
    if (first) yield { messages, bans: store.bans(), info: store.info(roomId), applied: ledger.recent(HANDOVER_APPLIED_MAX) };
    else if (messages.length > 0) yield { messages };
    first = false;
    if (messages.length < HANDOVER_PAGE) return;
    after = messages.at(-1)!.id;
  }
}

/** The frames a growing room holds: they change what the coordinator will own (chat, moderation). */
export type HeldFrame = Extract<ClientFrame, { type: "send" | "delete" | "kick" | "ban" | "unban" }>;

/** A held frame as the coordinator takes it from a shard (the room checked the sender's role already). */
export function upItemOf(cs: ConnState, connId: string, frame: HeldFrame): UpItem {
  const { userId, name } = cs.user;
  switch (frame.type) {
    case "send":
      return { t: "send", userId, ...(name !== undefined ? { name } : {}), text: frame.text, ...(frame.clientId !== undefined ? { clientId: frame.clientId } : {}) };
    case "delete":
      return { t: "delete", by: userId, connId, messageId: frame.messageId };
    case "unban":
      return { t: "unban", by: userId, connId, userId: frame.userId };
    case "kick":
    case "ban":
      return { t: frame.type, by: userId, connId, userId: frame.userId, ...(frame.reason !== undefined ? { reason: frame.reason } : {}) };
  }
}
