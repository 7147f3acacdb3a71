// Uploads (tus 1.0) and the videos API.
//
//   OPTIONS /uploads[/:id]      tus discovery (Tus-Version, Tus-Extension, Tus-Max-Size) and CORS preflight
//   POST    /uploads            tus creation (JWT): Upload-Length, Upload-Metadata (filename, filetype, title);
//                               with a body (Content-Type application/offset+octet-stream), creation-with-upload
//   HEAD    /uploads/:id        tus: Upload-Offset to resume from
//   PATCH   /uploads/:id        tus: the next chunk at Upload-Offset
//   DELETE  /uploads/:id        tus termination
//   POST    /videos             JSON {size, filename?, title?, contentType?}: the same creation, answered with
//                               the video and its tus upload URL (a client then PATCHes there)
//   GET     /videos             the caller's videos, newest first (?limit, ?before)
//   GET     /videos/:id         one video: status, progress, duration, poster, storyboard, playback URL
//   PATCH   /videos/:id         JSON {title?, playbackPolicy?: "public" | "signed"}
//   POST    /videos/:id/playback-tokens   a viewer token for a video (owner): {expiresIn?, notBefore?, viewerId?}
//   DELETE  /videos/:id         the video and every object stored for it
//   GET     /internal/media/uploads/<videoId>/source   an upload's source for a media node that cannot reach
//                               the bucket itself (local runs; Bearer INTERNAL_API_TOKEN), streamed from R2
//
// Playback goes through /play like live streams (videos/playback.ts builds the URLs): a public video plays at
// `/play/<videoId>/master.m3u8`, a signed one only with a viewer token in place of the id. The owner's views
// carry a working URL either way (a token of PLAYBACK_TOKEN_DEFAULT_TTL_S for a signed video).
//
// Someone else's upload or video answers 404, as a missing one does. Chunks: at most VIDEO_MAX_CHUNK_BYTES
// per PATCH (default 50 MiB; a Worker refuses request bodies over 100 MiB); tus-js-client `chunkSize: 50 * 1024
// * 1024` fits.

import { Hono } from "hono";
import { z } from "zod";
import { newId } from "../../../shared/ids.ts";
import { requireUser } from "../auth/middleware.ts";
import { requireInternalToken } from "../internal/auth.ts";
import { errorResponse } from "../auth/errors.ts";
import { allowedOrigins, API_METHODS, browserCors } from "../cors/cors.ts";
import type { AppEnv, Env } from "../env.ts";
import { forgetPlaybackState } from "../playback/access.ts";
import { mintPlaybackToken } from "../playback/tokens.ts";
import { type EdgeSettings, edgeSettings } from "../settings.ts";
import { tokenBody } from "../streams/model.ts";
import { playUrl } from "../streams/views.ts";
import { VIDEO_ID_PATTERN } from "./ids.ts";
import { ownerPlaybackUrls, pathUnder, playbackHandle } from "./playback.ts";
import { policyOf, VIDEO_POLICIES, type VideoPolicy, type VideoRecord } from "./records.ts";
import { checkTusResumable, discoveryHeaders, httpDate, OFFSET_CONTENT_TYPE, parseNonNegative, parseUploadMetadata, tusHeaders } from "./tus.ts";
import { UPLOAD_OWNER_HEADER, sourceKeyOf } from "./upload-session.ts";
import { bodyTextOr413, jsonBodyOr4xx, SMALL_JSON_BYTES } from "../http/body.ts";
import { outputFolderToDelete } from "./records.ts";

export const videoRoutes = new Hono<AppEnv>();

const VIDEO_ID = VIDEO_ID_PATTERN;

/** The video settings of the edge (edge/src/settings.ts). */
type VideoSettings = Pick<EdgeSettings, "videoMaxUploadBytes" | "videoMaxConcurrentUploads" | "videoUploadExpiryS" | "videoPartBytes" | "videoMaxChunkBytes" | "videoPageLimit">;
/** R2 takes at most 10,000 parts per object. */
const R2_MAX_PARTS = 10_000;

/** The largest upload: the setting, or what 10,000 parts hold if that is less. */
export function maxUploadSize(s: Pick<VideoSettings, "videoMaxUploadBytes" | "videoPartBytes">): number {
  return Math.min(s.videoMaxUploadBytes, R2_MAX_PARTS * s.videoPartBytes);
}

/** Why an upload of `size` bytes is refused at creation, if it is. Pure. */
export function sizeRefusal(size: number, s: Pick<VideoSettings, "videoMaxUploadBytes" | "videoPartBytes">): { status: number; code: string; message: string } | undefined {
  if (size === 0) return { status: 400, code: "upload_empty", message: "the file is empty" };
  if (size > s.videoMaxUploadBytes) return { status: 413, code: "upload_too_large", message: `the file is ${size} bytes; the limit is ${s.videoMaxUploadBytes}` };
  if (size > R2_MAX_PARTS * s.videoPartBytes) return { status: 413, code: "upload_too_large", message: `the file is ${size} bytes; ${R2_MAX_PARTS} parts of ${s.videoPartBytes} bytes hold at most ${R2_MAX_PARTS * s.videoPartBytes} (raise VIDEO_UPLOAD_PART_BYTES)` };
  return undefined;
}
const UPLOAD_HEADERS = ["Authorization", "Content-Type", "Tus-Resumable", "Upload-Length", "Upload-Metadata", "Upload-Offset", "Upload-Defer-Length", "X-HTTP-Method-Override"];

const originsOf = (env: Env) => allowedOrigins(edgeSettings(env).corsOrigins.join(","));

function withCors(res: Response, env: Env, origin: string | undefined): Response {
  const origins = originsOf(env);
  const allow = origins === "*" ? "*" : origin && origins.includes(origin) ? origin : null;
  if (!allow) return res;
  const out = new Response(res.body, res);
  out.headers.set("Access-Control-Allow-Origin", allow);
  if (allow !== "*") out.headers.append("Vary", "Origin");
  return out;
}

// The videos API is read and written from browsers (the app's origins only, as for the inbox).
for (const path of ["/videos", "/videos/*"]) {
  videoRoutes.use(path, browserCors(API_METHODS));
}

// CORS on every upload answer (tus clients in browsers read Upload-Offset and Location).
videoRoutes.use("/uploads", async (c, next) => {
  await next();
  c.res = withCors(c.res, c.env, c.req.header("origin"));
});
videoRoutes.use("/uploads/*", async (c, next) => {
  await next();
  c.res = withCors(c.res, c.env, c.req.header("origin"));
});

for (const path of ["/uploads", "/uploads/:id"]) {
  videoRoutes.options(path, (c) => {
    const h = discoveryHeaders(maxUploadSize(edgeSettings(c.env)));
    h.set("Access-Control-Allow-Methods", "POST, HEAD, PATCH, DELETE, OPTIONS");
    h.set("Access-Control-Allow-Headers", UPLOAD_HEADERS.join(", "));
    h.set("Access-Control-Max-Age", "600");
    return new Response(null, { status: 204, headers: h });
  });
}

function tusRefusal(status: number, code: string, message: string, extra: Record<string, string> = {}): Response {
  const h = tusHeaders(extra);
  h.set("content-type", "application/json; charset=utf-8");
  return new Response(JSON.stringify({ error: { code, message } }), { status, headers: h });
}

interface NewVideo {
  size: number;
  filename: string;
  title: string;
  contentType: string;
  playbackPolicy: VideoPolicy;
}

/** A playback policy from a client (tus metadata or JSON): absent means public, as for streams. */
function policyFrom(v: unknown): VideoPolicy | { error: Response } {
  if (v === undefined || v === "") return "public";
  if (typeof v === "string" && (VIDEO_POLICIES as readonly string[]).includes(v)) return v as VideoPolicy;
  return { error: errorResponse(400, "invalid_playback_policy", `playbackPolicy must be one of ${VIDEO_POLICIES.join(", ")}`) };
}

/** Creates the video record (enforcing the per-user limit) and its upload object; a Response when refused. */
async function createVideo(env: Env, ownerId: string, input: NewVideo, s: VideoSettings): Promise<{ video: VideoRecord } | Response> {
  const refused = sizeRefusal(input.size, s);
  if (refused) return tusRefusal(refused.status, refused.code, refused.message, { "Tus-Max-Size": String(maxUploadSize(s)) });
  const now = Date.now();
  const id = newId("vid");
  const expiresAt = now + s.videoUploadExpiryS * 1000;
  const record: VideoRecord = {
    id,
    ownerId,
    title: input.title.slice(0, 200) || input.filename.slice(0, 200) || "Untitled",
    filename: input.filename.slice(0, 255),
    size: input.size,
    status: "uploading",
    createdAt: now,
    updatedAt: now,
    uploadExpiresAt: expiresAt,
    progress: null,
    durationS: null,
    renditions: [],
    keys: {},
    failure: null,
    streamId: null,
    playbackPolicy: input.playbackPolicy,
  };
  const library = env.VideoLibrary.getByName(ownerId);
  const created = await library.create(record, s.videoMaxConcurrentUploads);
  if (!created.ok) return tusRefusal(created.code === "too_many_uploads" ? 429 : 409, created.code, created.message);
  try {
    await env.UploadSession.getByName(id).init({ videoId: id, ownerId, length: input.size, partBytes: s.videoPartBytes, maxChunkBytes: s.videoMaxChunkBytes, expiresAt, filename: record.filename, contentType: input.contentType });
  } catch (error) {
    await library.remove(id);
    throw error;
  }
  return { video: record };
}

function uploadUrl(requestUrl: string, id: string): string {
  return new URL(`/uploads/${id}`, requestUrl).toString();
}

/** A video as the API shows its owner: playback URLs through /play built here, never raw keys only. */
export async function videoView(env: Env, v: VideoRecord, requestUrl: string) {
  const s = edgeSettings(env);
  const playable = v.status === "playable" || v.status === "ready";
  const urls = playable ? await ownerPlaybackUrls(env, s, v) : null;
  const url = (key: string | undefined) => urls?.(key);
  // A recording of a stream the edge does not manage (published with a command-line token) keeps the URL the
  // media node announced; /play only serves streams and videos it knows.
  const announced = !v.keys.master || (v.streamId && !playbackHandle(s, v)) ? (v.announcedPlaybackUrl ?? undefined) : undefined;
  return {
    id: v.id,
    title: v.title,
    filename: v.filename,
    size: v.size,
    status: v.status,
    progress: v.progress,
    durationS: v.durationS,
    createdAt: new Date(v.createdAt).toISOString(),
    updatedAt: new Date(v.updatedAt).toISOString(),
    playbackPolicy: v.streamId ? undefined : policyOf(v),
    playbackUrl: playable ? (url(v.keys.master) ?? announced) : undefined,
    posterUrl: url(v.keys.poster),
    storyboardUrl: url(v.keys.storyboard),
    thumbnailUrls: v.keys.thumbnails ? v.keys.thumbnails.map((k) => url(k)).filter((u): u is string => u !== undefined) : undefined,
    renditions: v.renditions,
    failure: v.failure,
    streamId: v.streamId ?? undefined,
    upload: v.status === "uploading" && v.uploadExpiresAt ? { url: uploadUrl(requestUrl, v.id), expiresAt: new Date(v.uploadExpiresAt).toISOString() } : undefined,
  };
}

// ---- tus -------------------------------------------------------------------------------------------------

videoRoutes.post("/uploads", requireUser(), async (c) => {
  const s = edgeSettings(c.env);
  const h = c.req.raw.headers;
  const bad = checkTusResumable(h);
  if (bad) return tusRefusal(bad.status, bad.code, bad.message, { "Tus-Version": "1.0.0" });
  if (h.has("Upload-Defer-Length")) return tusRefusal(400, "defer_length_unsupported", "Upload-Length must be known at creation (creation-defer-length is not supported)");
  const length = parseNonNegative(h.get("Upload-Length"), "Upload-Length");
  if (!length.ok) return tusRefusal(length.error.status, length.error.code, length.error.message);
  const meta = parseUploadMetadata(h.get("Upload-Metadata"));
  if (!meta.ok) return tusRefusal(meta.error.status, meta.error.code, meta.error.message);
  const m = meta.metadata;
  const policy = policyFrom(m.playbackPolicy);
  if (typeof policy !== "string") return tusRefusal(400, "invalid_playback_policy", `Upload-Metadata playbackPolicy must be one of ${VIDEO_POLICIES.join(", ")}`);
  const created = await createVideo(c.env, c.var.user.userId, { size: length.value, filename: m.filename ?? m.name ?? "", title: m.title ?? "", contentType: m.filetype ?? m.type ?? "", playbackPolicy: policy }, s);
  if (created instanceof Response) return created;
  const id = created.video.id;
  const headers = tusHeaders({ Location: uploadUrl(c.req.url, id), "Upload-Expires": httpDate(created.video.uploadExpiresAt!) });
  // creation-with-upload: the first chunk rides along.
  const hasBody = c.req.raw.body !== null && (h.get("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase() === OFFSET_CONTENT_TYPE;
  if (hasBody) {
    const patch = new Headers({ "Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": OFFSET_CONTENT_TYPE, [UPLOAD_OWNER_HEADER]: c.var.user.userId });
    const contentLength = h.get("Content-Length");
    if (contentLength) patch.set("Content-Length", contentLength);
    const res = await c.env.UploadSession.getByName(id).fetch(new Request(`https://upload/${id}`, { method: "PATCH", headers: patch, body: c.req.raw.body }));
    headers.set("Upload-Offset", res.headers.get("Upload-Offset") ?? "0");
  }
  return new Response(null, { status: 201, headers });
});

async function forward(c: { env: Env; req: { raw: Request; param(k: string): string | undefined }; var: { user: { userId: string } } }, method: string): Promise<Response> {
  const id = c.req.param("id") ?? "";
  if (!VIDEO_ID.test(id)) return tusRefusal(404, "upload_not_found", "no such upload");
  const headers = new Headers(c.req.raw.headers);
  headers.delete("authorization");
  headers.set(UPLOAD_OWNER_HEADER, c.var.user.userId);
  return c.env.UploadSession.getByName(id).fetch(new Request(`https://upload/${id}`, { method, headers, body: method === "PATCH" ? c.req.raw.body : null }));
}

// Hono answers HEAD through the GET route (without the body), so HEAD lives here.
videoRoutes.get("/uploads/:id", requireUser(), async (c) => {
  if (c.req.raw.method !== "HEAD") return tusRefusal(405, "method_not_allowed", "use HEAD to read an upload's offset", { Allow: "HEAD, PATCH, DELETE, OPTIONS" });
  return forward(c, "HEAD");
});
videoRoutes.patch("/uploads/:id", requireUser(), (c) => forward(c, "PATCH"));
videoRoutes.delete("/uploads/:id", requireUser(), (c) => forward(c, "DELETE"));

// ---- videos ----------------------------------------------------------------------------------------------

videoRoutes.post("/videos", requireUser(), async (c) => {
  const s = edgeSettings(c.env);
  const text = await bodyTextOr413(c.req.raw, SMALL_JSON_BYTES);
  if ("response" in text) return text.response;
  let body: unknown;
  try {
    body = JSON.parse(text.text);
  } catch {
    return errorResponse(400, "invalid_json", "the body must be JSON: {size, filename?, title?, contentType?}");
  }
  const b = (body ?? {}) as Record<string, unknown>;
  const size = b.size;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) return errorResponse(400, "invalid_size", "size must be the file's length in bytes");
  const str = (v: unknown, max: number) => (typeof v === "string" ? v.slice(0, max) : "");
  const policy = policyFrom(b.playbackPolicy);
  if (typeof policy !== "string") return policy.error;
  const created = await createVideo(c.env, c.var.user.userId, { size, filename: str(b.filename, 255), title: str(b.title, 200), contentType: str(b.contentType, 255), playbackPolicy: policy }, s);
  if (created instanceof Response) return created;
  return c.json({ video: await videoView(c.env, created.video, c.req.url), upload: { url: uploadUrl(c.req.url, created.video.id), maxChunkBytes: s.videoMaxChunkBytes } }, 201);
});

videoRoutes.get("/videos", requireUser(), async (c) => {
  const s = edgeSettings(c.env);
  const limitRaw = c.req.query("limit");
  const beforeRaw = c.req.query("before");
  const limit = limitRaw === undefined ? s.videoPageLimit : Number(limitRaw);
  const before = beforeRaw === undefined ? undefined : Number(beforeRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) return errorResponse(400, "invalid_limit", "limit must be 1-100");
  if (before !== undefined && (!Number.isInteger(before) || before < 1)) return errorResponse(400, "invalid_before", "before must be a positive integer from nextBefore");
  const page = await c.env.VideoLibrary.getByName(c.var.user.userId).list({ before, limit });
  const videos = await Promise.all(page.videos.map((v) => videoView(c.env, v, c.req.url)));
  return c.json({ videos, ...(page.nextBefore ? { nextBefore: page.nextBefore } : {}) });
});

videoRoutes.get("/videos/:id", requireUser(), async (c) => {
  const v = await c.env.VideoLibrary.getByName(c.var.user.userId).get(c.req.param("id"));
  if (!v) return errorResponse(404, "video_not_found", "no such video");
  return c.json({ video: await videoView(c.env, v, c.req.url) });
});


const updateBody = z.object({ title: z.string().min(1).max(200).optional(), playbackPolicy: z.enum(VIDEO_POLICIES).optional() }).strict();

/** PATCH /videos/:id — title and playback policy of an uploaded video (a recording plays under its stream's). */
videoRoutes.patch("/videos/:id", requireUser(), async (c) => {
  const body = await jsonBodyOr4xx(c.req.raw, updateBody);
  if (!body.ok) return body.res;
  const library = c.env.VideoLibrary.getByName(c.var.user.userId);
  const id = c.req.param("id");
  const v = await library.get(id);
  if (!v) return errorResponse(404, "video_not_found", "no such video");
  if (v.streamId && body.value.playbackPolicy !== undefined) return errorResponse(409, "recording_policy", "a recording plays under its stream's policy; change it with PATCH /streams/:id");
  const next = await library.update(id, body.value);
  if (!next) return errorResponse(404, "video_not_found", "no such video");
  forgetPlaybackState(id);
  return c.json({ video: await videoView(c.env, next, c.req.url) });
});

/** POST /videos/:id/playback-tokens — a viewer token for the owner's video, as for streams. */
videoRoutes.post("/videos/:id/playback-tokens", requireUser(), async (c) => {
  const s = edgeSettings(c.env);
  const v = await c.env.VideoLibrary.getByName(c.var.user.userId).get(c.req.param("id"));
  if (!v) return errorResponse(404, "video_not_found", "no such video");
  const handle = playbackHandle(s, v);
  if (!handle || handle.kind !== "video") return errorResponse(409, "not_playable", v.streamId ? "a recording plays under its stream: mint a token with POST /streams/:id/playback-tokens" : "the video has no playable output yet");
  if (!s.playbackSigningKeys?.length) return errorResponse(503, "playback_signing_disabled", "PLAYBACK_SIGNING_KEYS is not set; viewer tokens cannot be minted");
  const body = await jsonBodyOr4xx(c.req.raw, tokenBody);
  if (!body.ok) return body.res;
  const nowS = Math.floor(Date.now() / 1000);
  const ttl = body.value.expiresIn ?? s.playbackTokenDefaultTtlS;
  if (ttl > s.playbackTokenMaxTtlS) return errorResponse(400, "expiry_too_long", `expiresIn is at most ${s.playbackTokenMaxTtlS} seconds`);
  const nbf = body.value.notBefore ?? nowS;
  if (nbf > nowS + s.playbackTokenMaxTtlS) return errorResponse(400, "not_before_too_late", `notBefore is at most ${s.playbackTokenMaxTtlS} seconds ahead`);
  const exp = Math.max(nowS, nbf) + ttl;
  const { token, kid } = await mintPlaybackToken(s.playbackSigningKeys, { streamId: v.id, exp, nbf, ...(body.value.viewerId ? { viewerId: body.value.viewerId } : {}) });
  const master = pathUnder(handle, v.keys.master) ?? "master.m3u8";
  return c.json({ token, kid, expiresAt: new Date(exp * 1000).toISOString(), notBefore: new Date(nbf * 1000).toISOString(), url: playUrl(s, token, master) }, 201);
});

/** Deletes every object under `prefix` (paged listing, batched deletes). */
async function deletePrefix(bucket: R2Bucket, prefix: string): Promise<number> {
  let cursor: string | undefined;
  let n = 0;
  do {
    const page = await bucket.list({ prefix, cursor, limit: 1000 });
    if (page.objects.length) await bucket.delete(page.objects.map((o) => o.key));
    n += page.objects.length;
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return n;
}

videoRoutes.delete("/videos/:id", requireUser(), async (c) => {
  const id = c.req.param("id");
  const library = c.env.VideoLibrary.getByName(c.var.user.userId);
  const v = await library.get(id);
  if (!v) return errorResponse(404, "video_not_found", "no such video");
  if (VIDEO_ID.test(id)) await c.env.UploadSession.getByName(id).destroy();
  // Processed outputs live in the folder of the master playlist (the media node's prefix), the source under uploads/.
  // A recording's files belong to its stream (they stay with the stream's other recordings).
  // The source goes first: a media node still processing the video checks for it, and takes its absence as the
  // delete (it stops and removes what it stored; what it stored before its last check is in the folder by now).
  const folder = outputFolderToDelete(v, edgeSettings(c.env).vodKeyPrefix);
  let removed = 0;
  if (!v.streamId) {
    removed += await deletePrefix(c.env.MEDIA, `uploads/${id}/`);
    removed += await deletePrefix(c.env.MEDIA, folder);
  }
  await library.remove(id);
  forgetPlaybackState(id);
  return c.json({ deleted: true, objects: removed });
});

// Media nodes in production read sources from R2 over the S3 API. In local runs the bucket is the Worker's
// simulation, which only the Worker can read: this streams an upload's source to a node that has the token.
videoRoutes.get("/internal/media/uploads/:id/source", requireInternalToken(), async (c) => {
  const id = c.req.param("id");
  if (!VIDEO_ID.test(id)) return errorResponse(404, "not_found", "no such object");
  // HEAD: whether the source is still there (a node checks it while it processes; a delete removes it first).
  if (c.req.raw.method === "HEAD") {
    const head = await c.env.MEDIA.head(sourceKeyOf(id));
    if (!head) return new Response(null, { status: 404 });
    return new Response(null, { headers: { "content-type": head.httpMetadata?.contentType ?? "application/octet-stream", "content-length": String(head.size) } });
  }
  // Ranges: a node starts FFmpeg on the source while it is still downloading, and reads the index of an MP4
  // stored at its end first (one `bytes=a-b` or `bytes=a-` range; nothing else is asked for).
  const rangeHeader = c.req.header("range");
  const m = rangeHeader ? /^bytes=(\d+)-(\d*)$/.exec(rangeHeader.trim()) : null;
  if (rangeHeader && !m) return new Response(null, { status: 416 });
  const offset = m ? Number(m[1]) : 0;
  if (m?.[2] && Number(m[2]) < offset) return new Response(null, { status: 416 });
  let object: R2ObjectBody | null;
  try {
    object = await c.env.MEDIA.get(sourceKeyOf(id), m ? { range: { offset, ...(m[2] ? { length: Number(m[2]) - offset + 1 } : {}) } } : {});
  } catch (error) {
    if (m) return new Response(null, { status: 416 }); // past the end
    throw error;
  }
  if (!object) return errorResponse(404, "not_found", "no such object");
  const type = object.httpMetadata?.contentType ?? "application/octet-stream";
  if (!m) return new Response(object.body, { headers: { "content-type": type, "content-length": String(object.size), "accept-ranges": "bytes" } });
  const length = Math.max(0, Math.min(object.size, m[2] ? Number(m[2]) + 1 : object.size) - offset);
  return new Response(object.body, { status: 206, headers: { "content-type": type, "content-length": String(length), "content-range": `bytes ${offset}-${offset + length - 1}/${object.size}` } });
});
