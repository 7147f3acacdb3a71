// GET/HEAD /play/<playback id | token>/<path>: HLS playlists, init segments, segments, captions and images
// through the Worker, for live streams (Streams API) and uploaded videos alike. A public stream or video is
// played by its id; a signed one only with a viewer token in the path, which relative URIs in playlists inherit. Refusals are JSON (401: the token is not acceptable; 403: it does
// not grant this stream, or the stream is not playable), never a media byte.
import { Hono } from "hono";
import type { Context } from "hono";
import { errorResponse } from "../auth/errors.ts";
import { allowedOrigins } from "../cors/cors.ts";
import type { AppEnv } from "../env.ts";
import { edgeSettings } from "../settings.ts";
import { type PlaybackAccess, playbackStateOf } from "./access.ts";
import { cacheKeyFor, loadObject, memoryCache, notModified, parseRange, type Stored } from "./cache.ts";
import { parsePlayPath } from "./path.ts";
import { mediaSource } from "./source.ts";
import { verifyPlaybackToken } from "./tokens.ts";
import { awaitLowLatencyPart, lowLatencyPlaylist, lowLatencyPlaylistOf, parseDirectives } from "../llhls/routes.ts";

export const playbackRoutes = new Hono<AppEnv>();

/** Headers a browser player may read from a cross-origin response. */
const EXPOSED = "Content-Length, Content-Range, Accept-Ranges, ETag, Cache-Control, Age, X-Pulsecast-Cache";

function corsHeaders(c: Context<AppEnv>): Headers {
  const h = new Headers();
  const origins = allowedOrigins(edgeSettings(c.env).corsOrigins.join(","));
  const origin = c.req.header("origin");
  if (origins === "*") h.set("access-control-allow-origin", "*");
  else if (origin && origins.includes(origin)) {
    h.set("access-control-allow-origin", origin);
    h.set("vary", "Origin");
  }
  h.set("access-control-expose-headers", EXPOSED);
  return h;
}

function refuse(c: Context<AppEnv>, status: number, code: string, message: string): Response {
  const h = corsHeaders(c);
  h.set("cache-control", "no-store");
  return errorResponse(status, code, message, h);
}

playbackRoutes.options("/play/*", (c) => {
  const h = corsHeaders(c);
  h.set("access-control-allow-methods", "GET, HEAD, OPTIONS");
  h.set("access-control-allow-headers", "Range, If-None-Match");
  h.set("access-control-max-age", "600");
  return new Response(null, { status: 204, headers: h });
});

playbackRoutes.on(["GET", "HEAD"], "/play/*", async (c) => {
  const s = edgeSettings(c.env);
  // The raw path: Request URLs are already normalised (`..` resolved), and nothing here decodes `%`.
  const url = new URL(c.req.url);
  const target = parsePlayPath(url.pathname);
  if (!target.ok) return refuse(c, target.status, target.code, target.message);

  // A token names its stream or video (`sub`); an id in the path is played only when its policy is public.
  let id: string;
  let state: PlaybackAccess;
  if (target.by === "token") {
    if (!s.playbackSigningKeys?.length) return refuse(c, 401, "token_unknown_kid", "no playback signing keys are configured");
    const check = await verifyPlaybackToken(s.playbackSigningKeys, target.token);
    if (!check.ok) return refuse(c, check.status, check.code, check.message);
    id = check.claims.sub;
    state = await playbackStateOf(c.env, id, s.playbackStateCacheMs);
    if (!state.exists || !state.playable) return refuse(c, 403, `${state.kind}_unavailable`, state.kind === "video" ? "the video is deleted or not playable yet" : "the stream is disabled or deleted");
  } else {
    id = target.streamId;
    state = await playbackStateOf(c.env, id, s.playbackStateCacheMs);
    if (!state.exists) return refuse(c, 404, `${state.kind}_not_found`, `no such ${state.kind}`);
    if (!state.playable) return refuse(c, 403, `${state.kind}_unavailable`, state.kind === "video" ? "the video is not playable yet" : "the stream is disabled");
    if (state.policy !== "public") return refuse(c, 403, "token_required", `this ${state.kind} is signed: play it with a viewer token in the path`);
  }
  // A stream's files live under MEDIA_KEY_PREFIX/<streamId>/; a video's in the folder of its master playlist.
  const root = state.kind === "video" ? state.prefix : `${s.mediaKeyPrefix}/${id}`;
  if (!root) return refuse(c, 403, "video_unavailable", "the video is not playable yet");

  // A live stream's low-latency playlists are its object's, not storage's.
  const ll = state.kind === "stream" ? lowLatencyPlaylistOf(target.path) : undefined;
  if (ll) return serveLowLatencyPlaylist(c, id, ll, url);

  const source = mediaSource(c.env, s);
  if (!source) return refuse(c, 503, "playback_misconfigured", "no media source: bind MEDIA (R2) or set PLAYBACK_ORIGIN_URL");
  const load = () =>
    loadObject({
      cache: caches.default,
      memory: memoryCache(s.playbackMemoryCacheMb * 1024 * 1024),
      source,
      cacheKey: cacheKeyFor(url.origin, id, target.path),
      storageKey: `${root}/${target.path}`,
      kind: target.kind,
      contentType: target.contentType,
      waitUntil: (p) => c.executionCtx.waitUntil(p),
    });
  let result;
  try {
    result = await load();
    // A low-latency part asked for before it exists (players that follow the preload hint): wait for it.
    if (!result.stored && state.kind === "stream" && (await awaitLowLatencyPart(c.env, id, target.path))) result = await load();
  } catch (error) {
    console.error(`playback: source failed for ${id}/${target.path}:`, error);
    return refuse(c, 502, "origin_unavailable", "the media store could not be reached; retry");
  }
  if (!result.stored) return refuse(c, 404, "not_found", "no such file (yet)");
  return serve(c, result.stored, result.outcome);
});

/**
 * An LL-HLS media playlist, from the stream's object: held there until the part the directives name exists, then
 * the one rendered, gzipped version. Cache lifetimes as the spec's delivery profile suggests: a request with
 * directives (a blocking request) 6 target durations, a plain one half a target duration; refusals not at all.
 */
async function serveLowLatencyPlaylist(c: Context<AppEnv>, id: string, ll: { broadcastId: string; rendition: string }, url: URL): Promise<Response> {
  const d = parseDirectives(url.searchParams);
  if (!d.ok) return refuse(c, 400, "bad_directive", d.message);
  const gzip = /\bgzip\b/i.test(c.req.header("accept-encoding") ?? "");
  const viewer = c.req.header("cf-connecting-ip") ?? c.req.header("x-real-ip") ?? crypto.randomUUID();
  const answer = await lowLatencyPlaylist(c.env, id, { ...ll, directives: d.directives }, { gzip, viewer });
  if (answer.status !== 200) return refuse(c, answer.status, answer.error?.code ?? "error", answer.error?.message ?? "");
  const h = corsHeaders(c);
  h.set("content-type", "application/vnd.apple.mpegurl");
  const blocking = d.directives.msn !== undefined;
  h.set("cache-control", `public, max-age=${blocking ? 6 * answer.targetS : Math.max(1, Math.floor(answer.targetS / 2))}`);
  h.append("vary", "Accept-Encoding");
  if (answer.gzip) h.set("content-encoding", "gzip");
  const body = c.req.method === "HEAD" ? null : answer.body;
  // The bytes are gzipped once per playlist version by the object: sent as they are, not compressed again.
  return new Response(body, { status: 200, headers: h, encodeBody: answer.gzip ? "manual" : "automatic" });
}

function serve(c: Context<AppEnv>, stored: Stored, outcome: string): Response {
  const h = corsHeaders(c);
  h.set("content-type", stored.contentType);
  h.set("etag", stored.etag);
  h.set("cache-control", stored.cacheControl);
  h.set("accept-ranges", "bytes");
  h.set("x-pulsecast-cache", outcome);
  if (notModified(c.req.header("if-none-match") ?? null, stored.etag)) return new Response(null, { status: 304, headers: h });
  const size = stored.body.byteLength;
  const range = parseRange(c.req.header("range") ?? null, size);
  const head = c.req.method === "HEAD";
  if (range.kind === "unsatisfiable") {
    h.set("content-range", `bytes */${size}`);
    h.set("content-type", "application/json; charset=utf-8");
    return new Response(JSON.stringify({ error: { code: "range_not_satisfiable", message: `the object has ${size} bytes` } }), { status: 416, headers: h });
  }
  if (range.kind === "partial") {
    h.set("content-range", `bytes ${range.start}-${range.end}/${size}`);
    h.set("content-length", String(range.end - range.start + 1));
    return new Response(head ? null : stored.body.slice(range.start, range.end + 1), { status: 206, headers: h });
  }
  h.set("content-length", String(size));
  return new Response(head ? null : stored.body, { status: 200, headers: h });
}
