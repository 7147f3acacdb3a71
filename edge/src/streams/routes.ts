// The Streams API (JSON over HTTP, client JWT as for rooms): live inputs owned by broadcasters, their stream
// keys, playback policy and viewer tokens; and the media nodes' key check (internal token).
import { Hono } from "hono";
import type { Context } from "hono";
import { z } from "zod";
import { newId } from "../../../shared/ids.ts";
import { checkStreamId } from "../../../shared/names.ts";
import { errorResponse } from "../auth/errors.ts";
import { jsonBodyOr4xx } from "../http/body.ts";
import { API_METHODS, browserCors } from "../cors/cors.ts";
import { requireUser } from "../auth/middleware.ts";
import { bearerToken } from "../auth/token.ts";
import { roomAllowed, type VerifiedUser } from "../auth/claims.ts";
import { isApiStreamId } from "../ingress/dispatch.ts";
import type { AppEnv, Env } from "../env.ts";
import { requireInternalToken, timingSafeEqualStrings } from "../internal/auth.ts";
import { mintPlaybackToken } from "../playback/tokens.ts";
import { edgeSettings } from "../settings.ts";
import { isBigRoom } from "../bigrooms/placement.ts";
import { forgetPlaybackState } from "../playback/access.ts";
import { createBody, type StreamRecord, tokenBody, updateBody } from "./model.ts";
import { fleetObject } from "../fleet/fleet-object.ts";
import { type IngestTarget, ingestView, ownerView, playUrl, publicView } from "./views.ts";

/** Role that may create streams. */
export const BROADCASTER_ROLE = "broadcaster";
const PAGE_DEFAULT = 20;
const PAGE_MAX = 100;

export const streamRoutes = new Hono<AppEnv>();

const streamObject = (env: Env, id: string) => env.Stream.getByName(id);
const ownerIndex = (env: Env, ownerId: string) => env.StreamIndex.getByName(`owner:${ownerId}`);


/** The room's presence count, or null when the room cannot be asked (a stream's page must not fail on it). */
async function viewersOf(env: Env, roomId: string): Promise<number | null> {
  try {
    // A big room counts its users at its coordinator (a grown room's Room asks it too).
    return await (isBigRoom(roomId, edgeSettings(env).roomSharded) ? env.RoomCoordinator.getByName(roomId) : env.Room.getByName(roomId)).presenceCount();
  } catch (error) {
    console.error(`streams: presence count of room ${roomId} unavailable:`, error);
    return null;
  }
}


/**
 * The media node each stream's broadcaster should publish to (fleet/pick.ts), by stream id; a stream missing
 * from the answer gets RTMP_BASE_URL. Disabled streams are not routed. The fleet object failing must not take
 * the Streams API down with it: then every stream gets RTMP_BASE_URL.
 */
async function ingestFor(env: Env, records: StreamRecord[], avoid: string[] = [], reserve = true): Promise<Map<string, IngestTarget>> {
  const ids = records.filter((r) => !r.disabled).map((r) => r.id);
  if (ids.length === 0) return new Map();
  try {
    const picks = await fleetObject(env).assign(ids, avoid, { reserve });
    return new Map(Object.entries(picks).flatMap(([id, p]) => (p ? [[id, { rtmpServer: p.rtmpServer, nodeId: p.nodeId }] as const] : [])));
  } catch (error) {
    console.error("streams: the fleet could not be asked for a media node; handing out RTMP_BASE_URL:", error);
    return new Map();
  }
}

/** ownerView with the stream's ingest node. */
async function ownerViewOf(c: Context<AppEnv>, r: StreamRecord, viewers: number | null) {
  const ingest = await ingestFor(c.env, [r]);
  return ownerView(edgeSettings(c.env), r, viewers, ingest.get(r.id) ?? null);
}

/** Loads the stream named in the path, answering 404 for bad or unknown ids. */
async function loadStream(c: Context<AppEnv>): Promise<{ ok: true; r: StreamRecord } | { ok: false; res: Response }> {
  const id = c.req.param("id") ?? "";
  if (!checkStreamId(id).ok) return { ok: false, res: errorResponse(404, "stream_not_found", "no such stream") };
  const r = await streamObject(c.env, id).get();
  if (!r) return { ok: false, res: errorResponse(404, "stream_not_found", "no such stream") };
  return { ok: true, r };
}

function mustOwn(user: VerifiedUser, r: StreamRecord): Response | null {
  return user.userId === r.ownerId ? null : errorResponse(403, "not_stream_owner", "only the stream's owner may do this");
}

// ---- internal: key checks from media nodes (registered first: these paths take the internal token, not a JWT)

const keyCheckBody = z.object({ keys: z.array(z.object({ streamId: z.string(), kv: z.number().int().nonnegative() }).strict()).min(1) }).strict();

/**
 * POST /internal/streams/key-check — `{keys: [{streamId, kv}]}` → `{results: [{streamId, ok, reason?, keyVersion?}]}`.
 * Media nodes ask at publish time and then every few seconds for the streams they carry.
 */
streamRoutes.post("/internal/streams/key-check", requireInternalToken(), async (c) => {
  const s = edgeSettings(c.env);
  const body = await jsonBodyOr4xx(c.req.raw, keyCheckBody);
  if (!body.ok) return body.res;
  const { keys } = body.value;
  if (keys.length > s.streamKeyCheckMax) return errorResponse(400, "too_many_keys", `at most ${s.streamKeyCheckMax} keys per call`);
  const results = await Promise.all(
    keys.map(async ({ streamId, kv }) => {
      if (!checkStreamId(streamId).ok) return { streamId, ok: false, reason: "unknown-stream" };
      return { streamId, ...(await streamObject(c.env, streamId).checkKey(kv)) };
    }),
  );
  return c.json({ results });
});

// ---- browsers: dashboards call the API cross-origin with a bearer JWT (no cookies), so CORS_ORIGINS applies
// as for history and the inbox; registered before auth so a preflight (which carries no token) is answered.
for (const path of ["/streams", "/streams/*"]) {
  streamRoutes.use(path, browserCors(API_METHODS));
}

// ---- playback tokens: the owner (JWT) or a server (internal token)

streamRoutes.post("/streams/:id/playback-tokens", async (c, next) => {
  const expected = edgeSettings(c.env).internalApiToken;
  const given = bearerToken(c.req.header("authorization"));
  if (expected && given && timingSafeEqualStrings(given, expected)) return mintTokenRoute(c, null);
  return next();
});

// ---- everything else needs a client JWT

streamRoutes.use("/streams", requireUser());
streamRoutes.use("/streams/*", requireUser());

streamRoutes.post("/streams/:id/playback-tokens", (c) => mintTokenRoute(c, c.var.user));

async function mintTokenRoute(c: Context<AppEnv>, user: VerifiedUser | null): Promise<Response> {
  const s = edgeSettings(c.env);
  const loaded = await loadStream(c);
  if (!loaded.ok) return loaded.res;
  const { r } = loaded;
  if (user) {
    const denied = mustOwn(user, r);
    if (denied) return denied;
  }
  if (!s.playbackSigningKeys?.length) return errorResponse(503, "playback_signing_disabled", "PLAYBACK_SIGNING_KEYS is not set; viewer tokens cannot be minted");
  const body = await jsonBodyOr4xx(c.req.raw, tokenBody);
  if (!body.ok) return body.res;
  const nowS = Math.floor(Date.now() / 1000);
  const ttl = body.value.expiresIn ?? s.playbackTokenDefaultTtlS;
  if (ttl > s.playbackTokenMaxTtlS) return errorResponse(400, "expiry_too_long", `expiresIn is at most ${s.playbackTokenMaxTtlS} seconds`);
  const nbf = body.value.notBefore ?? nowS;
  if (nbf > nowS + s.playbackTokenMaxTtlS) return errorResponse(400, "not_before_too_late", `notBefore is at most ${s.playbackTokenMaxTtlS} seconds ahead`);
  const exp = Math.max(nowS, nbf) + ttl;
  const { token, kid } = await mintPlaybackToken(s.playbackSigningKeys, { streamId: r.id, exp, nbf, ...(body.value.viewerId ? { viewerId: body.value.viewerId } : {}) });
  return c.json({ token, kid, expiresAt: new Date(exp * 1000).toISOString(), notBefore: new Date(nbf * 1000).toISOString(), url: playUrl(s, token) }, 201);
}

/**
 * A stream's events set its room's stream state, and its owner moderates that room: so a stream may follow a room
 * other than its own (the default, named after the stream) only where the app granted the broadcaster that room
 * by name in the token's `rooms` claim. A token without a `rooms` claim may enter any room, but that is not a
 * grant to take a room over; and another API stream's room is never available.
 */
function customRoomRefusal(user: VerifiedUser, roomId: string | undefined): Response | undefined {
  if (roomId === undefined) return undefined;
  if (isApiStreamId(roomId)) return errorResponse(403, "room_not_granted", "roomId names another stream's room");
  if (!user.rooms || !roomAllowed(user, roomId)) {
    return errorResponse(403, "room_not_granted", "a custom roomId needs a token whose `rooms` claim grants that room");
  }
  return undefined;
}

/** POST /streams — creates a live input owned by the caller (role `broadcaster`). */
streamRoutes.post("/streams", async (c) => {
  const s = edgeSettings(c.env);
  const user = c.var.user;
  if (user.role !== BROADCASTER_ROLE) return errorResponse(403, "broadcaster_role_required", `creating streams needs a token with role '${BROADCASTER_ROLE}'`);
  if (!s.publishTokenSecret) return errorResponse(503, "streams_misconfigured", "PUBLISH_TOKEN_SECRET is not set; stream keys cannot be minted");
  const body = await jsonBodyOr4xx(c.req.raw, createBody);
  if (!body.ok) return body.res;
  const roomRefusal = customRoomRefusal(user, body.value.roomId);
  if (roomRefusal) return roomRefusal;
  const id = newId("str").toLowerCase();
  const now = Date.now();
  // Index first: a crash between the two leaves an id in the owner's list with no stream, which the list
  // skips; the other order could leave a stream its owner cannot find.
  await ownerIndex(c.env, user.userId).add(id, now);
  const r = await streamObject(c.env, id).create({ id, ownerId: user.userId, body: body.value });
  if (!r) return errorResponse(409, "stream_exists", "stream id collision; retry");
  return c.json(await ownerViewOf(c, r, 0), 201);
});

/** GET /streams?limit=&cursor= — the caller's own streams, newest first. */
streamRoutes.get("/streams", async (c) => {
  const s = edgeSettings(c.env);
  const limitRaw = c.req.query("limit");
  const limit = limitRaw === undefined ? PAGE_DEFAULT : Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > PAGE_MAX) return errorResponse(400, "invalid_limit", `limit is a whole number from 1 to ${PAGE_MAX}`);
  const cursor = c.req.query("cursor");
  if (cursor !== undefined && !checkStreamId(cursor).ok) return errorResponse(400, "invalid_cursor", "cursor is the `next` of a previous page");
  const page = await ownerIndex(c.env, c.var.user.userId).list(limit, cursor);
  const records = (await Promise.all(page.ids.map((id) => streamObject(c.env, id).get()))) as (StreamRecord | null)[];
  const own = records.filter((r): r is StreamRecord => r !== null && r.ownerId === c.var.user.userId);
  // A list shows where each stream would go, without holding a node for every stream of the list.
  const ingest = await ingestFor(c.env, own, [], false);
  const streams = await Promise.all(own.map(async (r) => ownerView(s, r, await viewersOf(c.env, r.roomId), ingest.get(r.id) ?? null)));
  return c.json({ streams, ...(page.next ? { next: page.next } : {}) });
});

/** GET /streams/:id — the owner sees everything, others the public fields. */
streamRoutes.get("/streams/:id", async (c) => {
  const s = edgeSettings(c.env);
  const loaded = await loadStream(c);
  if (!loaded.ok) return loaded.res;
  const viewers = await viewersOf(c.env, loaded.r.roomId);
  if (c.var.user.userId === loaded.r.ownerId) return c.json(await ownerViewOf(c, loaded.r, viewers));
  return c.json(publicView(s, loaded.r, viewers));
});

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * GET /streams/:id/ingest[?avoid=<node>,<node>] — where to publish right now (owner): the RTMP URL of the media node
 * for this stream (the node it is live on, else the least loaded healthy one) with the stream key. Broadcasting
 * software asks again before each reconnect, naming in `avoid` the nodes it just failed to reach, so a broadcaster
 * whose node died continues on another at once (not only once the dead node's heartbeats are overdue).
 */
streamRoutes.get("/streams/:id/ingest", async (c) => {
  const avoid = (c.req.query("avoid") ?? "").split(",").filter(Boolean);
  if (avoid.length > 8 || avoid.some((a) => !NODE_ID.test(a))) return errorResponse(400, "invalid_query", "avoid is a comma-separated list of up to 8 node ids");
  const loaded = await loadStream(c);
  if (!loaded.ok) return loaded.res;
  const denied = mustOwn(c.var.user, loaded.r);
  if (denied) return denied;
  if (loaded.r.disabled) return errorResponse(403, "stream_disabled", "the stream is disabled; enable it to publish");
  const ingest = await ingestFor(c.env, [loaded.r], avoid);
  return c.json(await ingestView(edgeSettings(c.env), loaded.r, ingest.get(loaded.r.id) ?? null));
});

/** PATCH /streams/:id — title, record, latencyMode, playbackPolicy. */
streamRoutes.patch("/streams/:id", async (c) => {
  const s = edgeSettings(c.env);
  const loaded = await loadStream(c);
  if (!loaded.ok) return loaded.res;
  const denied = mustOwn(c.var.user, loaded.r);
  if (denied) return denied;
  const body = await jsonBodyOr4xx(c.req.raw, updateBody);
  if (!body.ok) return body.res;
  const r = await streamObject(c.env, loaded.r.id).update(body.value);
  if (!r) return errorResponse(404, "stream_not_found", "no such stream");
  forgetPlaybackState(r.id);
  return c.json(await ownerViewOf(c, r, await viewersOf(c.env, r.roomId)));
});

const ACTIONS = {
  key: (env: Env, id: string) => streamObject(env, id).rotateKey(),
  disable: (env: Env, id: string) => streamObject(env, id).setDisabled(true),
  enable: (env: Env, id: string) => streamObject(env, id).setDisabled(false),
} as const;

for (const [action, run] of Object.entries(ACTIONS)) {
  /** POST /streams/:id/key (rotate), /disable, /enable */
  streamRoutes.post(`/streams/:id/${action}`, async (c) => {
    const s = edgeSettings(c.env);
    const loaded = await loadStream(c);
    if (!loaded.ok) return loaded.res;
    const denied = mustOwn(c.var.user, loaded.r);
    if (denied) return denied;
    const r = await run(c.env, loaded.r.id);
    if (!r) return errorResponse(404, "stream_not_found", "no such stream");
    forgetPlaybackState(r.id);
    return c.json(await ownerViewOf(c, r, await viewersOf(c.env, r.roomId)));
  });
}

/** DELETE /streams/:id — its keys stop working; its recordings stay in storage. */
streamRoutes.delete("/streams/:id", async (c) => {
  const loaded = await loadStream(c);
  if (!loaded.ok) return loaded.res;
  const denied = mustOwn(c.var.user, loaded.r);
  if (denied) return denied;
  await streamObject(c.env, loaded.r.id).remove();
  await ownerIndex(c.env, loaded.r.ownerId).remove(loaded.r.id);
  forgetPlaybackState(loaded.r.id);
  return new Response(null, { status: 204 });
});
