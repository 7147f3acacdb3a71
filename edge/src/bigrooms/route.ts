// The front Worker's side of big rooms: after the same checks as any room request (guardPartyRequest), an
// upgrade goes to the user's shard (by a hash of the user id, no lookup), and on to the next shard while
// shards answer `shard_full`; HTTP (history) goes to the coordinator. Nothing here asks the coordinator on connect.
import { Hono } from "hono";
import type { Envelope } from "../../../shared/envelope.ts";
import type { EventApplyOutcome } from "../ledger/applied-ledger.ts";
import { userFromRequest } from "../auth/claims.ts";
import { errorResponse } from "../auth/errors.ts";
import { answerSubprotocol, guardPartyRequest } from "../auth/party-guard.ts";
import type { AppEnv, Env } from "../env.ts";
import { requireInternalToken } from "../internal/auth.ts";
import { checkRoomId } from "../../../shared/names.ts";
import { type EdgeSettings, edgeSettings } from "../settings.ts";
import { knownGrown, rememberGrown } from "./grown.ts";
import { connectionIdFor, isBigRoom, relayName, shardName, shardOrder } from "./placement.ts";
import type { ObjectStats } from "./stats.ts";

/** The room id of a `/parties/room/<roomId>...` URL, else null. */
export function roomIdOf(url: URL): string | null {
  const [, parties, party, name] = url.pathname.split("/");
  return parties === "parties" && party === "room" && name ? name : null;
}

/** The room id of a `/parties/room/<roomId>...` URL when that room is known to be big (by setting, or grown), else null. */
export function bigRoomOf(url: URL, settings: EdgeSettings): string | null {
  const name = roomIdOf(url);
  return name && (isBigRoom(name, settings.roomSharded) || knownGrown(name)) ? name : null;
}

/** Whether a room is big: named in ROOM_SHARDED, or grown past ROOM_SHARD_AT (its Room is asked unless this isolate knows). */
export async function isBigRoomNow(env: Env, roomId: string): Promise<boolean> {
  if (isBigRoom(roomId, edgeSettings(env).roomSharded) || knownGrown(roomId)) return true;
  if (!(await env.Room.getByName(roomId).isGrown())) return false;
  rememberGrown(roomId);
  return true;
}

/** Serves one client request for big room `roomId` (the URL already normalized by the caller). */
export async function bigRoomRequest(req: Request, env: Env, roomId: string): Promise<Response> {
  const guarded = await guardPartyRequest(req, env, "room", roomId);
  if (guarded instanceof Response) return guarded;
  if (guarded.headers.get("upgrade")?.toLowerCase() !== "websocket") return env.RoomCoordinator.getByName(roomId).fetch(guarded);
  const user = userFromRequest(guarded)!;
  const settings = edgeSettings(env);
  const res = await placeOnShard(guarded, user.userId, settings.roomShards, (index, request) => env.RoomShard.getByName(shardName(roomId, index)).fetch(request));
  const protocol = res.status === 101 && res.webSocket ? answerSubprotocol(req) : null;
  if (!protocol) return res;
  const headers = new Headers(res.headers);
  headers.set("sec-websocket-protocol", protocol);
  return new Response(null, { status: 101, webSocket: res.webSocket, headers });
}

/**
 * Tries the user's shards in order (home shard first) until one accepts; each attempt gets a connection id that
 * names its shard. All full: 503 `room_full`. Exported for tests (the shard fetch is injected).
 */
export async function placeOnShard(request: Request, userId: string, shards: number, fetchShard: (index: number, request: Request) => Promise<Response>): Promise<Response> {
  const uuid = new URL(request.url).searchParams.get("_pk") ?? crypto.randomUUID();
  for (const index of shardOrder(userId, shards)) {
    const url = new URL(request.url);
    url.searchParams.set("_pk", connectionIdFor(index, uuid));
    const res = await fetchShard(index, new Request(url, { headers: request.headers }));
    if (res.status === 503 && (await peekCode(res)) === "shard_full") continue;
    return res;
  }
  return errorResponse(503, "room_full", `every one of the room's ${shards} shards is full`, { "retry-after": "5" });
}

async function peekCode(res: Response): Promise<string | undefined> {
  try {
    return ((await res.clone().json()) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

/**
 * GET /internal/bigrooms/:roomId/stats: load of every part of a big room (sockets, incoming events, handler
 * time), for operators and the bench. POST .../stats/reset starts the counters again.
 */
export const bigRoomRoutes = new Hono<AppEnv>();
bigRoomRoutes.use("/internal/bigrooms/*", requireInternalToken());

function parts(env: Env, roomId: string): { stats(): Promise<ObjectStats>; resetStats(): Promise<void> }[] {
  const s = edgeSettings(env);
  const relays = s.roomShards > s.roomRelayFanout ? Math.ceil(s.roomShards / s.roomRelayFanout) : 0;
  return [
    env.RoomCoordinator.getByName(roomId),
    ...Array.from({ length: relays }, (_, i) => env.RoomRelay.getByName(relayName(roomId, i))),
    ...Array.from({ length: s.roomShards }, (_, i) => env.RoomShard.getByName(shardName(roomId, i))),
  ];
}

bigRoomRoutes.get("/internal/bigrooms/:roomId/stats", async (c) => {
  const roomId = c.req.param("roomId");
  const check = checkRoomId(roomId);
  if (!check.ok) return errorResponse(400, "invalid_room_id", check.reason);
  if (!(await isBigRoomNow(c.env, roomId))) return errorResponse(404, "not_a_big_room", `room '${roomId}' is neither in ROOM_SHARDED nor grown past ROOM_SHARD_AT`);
  return c.json({ roomId, objects: await Promise.all(parts(c.env, roomId).map((p) => p.stats())) });
});

bigRoomRoutes.post("/internal/bigrooms/:roomId/stats/reset", async (c) => {
  const roomId = c.req.param("roomId");
  const check = checkRoomId(roomId);
  if (!check.ok) return errorResponse(400, "invalid_room_id", check.reason);
  if (!(await isBigRoomNow(c.env, roomId))) return errorResponse(404, "not_a_big_room", `room '${roomId}' is neither in ROOM_SHARDED nor grown past ROOM_SHARD_AT`);
  await Promise.all(parts(c.env, roomId).map((p) => p.resetStats()));
  return c.json({ reset: true });
});

/** What the small Room and a big room's coordinator both answer for system events (DO RPC). */
export interface RoomEventTarget {
  applyEvent(event: Envelope): Promise<{ applied: boolean }>;
  applyEvents(events: Envelope[]): Promise<EventApplyOutcome[]>;
}

/** Where a room's system events go: a big room's coordinator, or the small room itself (which passes them on once grown). */
export function roomEventTarget(env: Env, roomId: string): RoomEventTarget {
  return isBigRoom(roomId, edgeSettings(env).roomSharded) || knownGrown(roomId) ? env.RoomCoordinator.getByName(roomId) : env.Room.getByName(roomId);
}
