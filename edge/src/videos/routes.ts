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
//   DELETE  /videos/:id         the video and every object stored for it
//   GET     /internal/media/uploads/<videoId>/source   an upload's source for a media node that cannot reach
//                               the bucket itself (local runs; Bearer INTERNAL_API_TOKEN), streamed from R2
//
// Someone else's upload or video answers 404, as a missing one does. Chunks: at most VIDEO_MAX_CHUNK_BYTES
// per PATCH (default 50 MiB; a Worker refuses request bodies over 100 MiB); tus-js-client `chunkSize: 50 * 1024
// * 1024` fits.

import { Hono } from "hono";
import { cors } from "hono/cors";
import { newId } from "../../../shared/ids.ts";
import { SettingsError } from "../../../shared/settings/settings.ts";
import { requireUser } from "../auth/middleware.ts";
import { requireInternalToken } from "../internal/auth.ts";
import { errorResponse } from "../auth/errors.ts";
import { allowedOrigins } from "../cors/cors.ts";
import type { AppEnv, Env } from "../env.ts";
import { playbackUrl } from "./playback.ts";
import type { VideoRecord } from "./records.ts";
import { readVideoSettings, type VideoSettings } from "./settings.ts";
import { checkTusResumable, discoveryHeaders, httpDate, OFFSET_CONTENT_TYPE, parseNonNegative, parseUploadMetadata, tusHeaders } from "./tus.ts";
import { UPLOAD_OWNER_HEADER, sourceKeyOf } from "./upload-session.ts";

export const videoRoutes = new Hono<AppEnv>();

const VIDEO_ID = /^vid_[0-9A-Za-z]{10,40}$/;
/** R2 takes at most 10,000 parts per object. */
const R2_MAX_PARTS = 10_000;

/** The largest upload: the setting, or what 10,000 parts hold if that is less. */
export function maxUploadSize(s: Pick<VideoSettings, "maxUploadBytes" | "partBytes">): number {
  return Math.min(s.maxUploadBytes, R2_MAX_PARTS * s.partBytes);
}

/** Why an upload of `size` bytes is refused at creation, if it is. Pure. */
export function sizeRefusal(size: number, s: Pick<VideoSettings, "maxUploadBytes" | "partBytes">): { status: number; code: string; message: string } | undefined {
  if (size === 0) return { status: 400, code: "upload_empty", message: "the file is empty" };
  if (size > s.maxUploadBytes) return { status: 413, code: "upload_too_large", message: `the file is ${size} bytes; the limit is ${s.maxUploadBytes}` };
  if (size > R2_MAX_PARTS * s.partBytes) return { status: 413, code: "upload_too_large", message: `the file is ${size} bytes; ${R2_MAX_PARTS} parts of ${s.partBytes} bytes hold at most ${R2_MAX_PARTS * s.partBytes} (raise VIDEO_UPLOAD_PART_BYTES)` };
  return undefined;
}
const UPLOAD_HEADERS = ["Authorization", "Content-Type", "Tus-Resumable", "Upload-Length", "Upload-Metadata", "Upload-Offset", "Upload-Defer-Length", "X-HTTP-Method-Override"];

function settingsOf(env: Env): VideoSettings | Response {
  try {
    return readVideoSettings(env);
  } catch (error) {
    if (error instanceof SettingsError) return errorResponse(503, "misconfigured", "video settings are invalid; see the Worker's log");
    throw error;
  }
}

function withCors(res: Response, env: Env, origin: string | undefined): Response {
  const origins = allowedOrigins(env.CORS_ORIGINS);
  const allow = origins === "*" ? "*" : origin && origins.includes(origin) ? origin : null;
  if (!allow) return res;
  const out = new Response(res.body, res);
  out.headers.set("Access-Control-Allow-Origin", allow);
  if (allow !== "*") out.headers.append("Vary", "Origin");
  return out;
}

// The videos API is read and written from browsers (the app's origins only, as for the inbox).
for (const path of ["/videos", "/videos/*"]) {
  videoRoutes.use(path, async (c, next) => {
    const origins = allowedOrigins(c.env.CORS_ORIGINS);
    return cors({
      origin: origins === "*" ? "*" : (origin) => (origins.includes(origin) ? origin : null),
      allowMethods: ["GET", "POST", "DELETE", "OPTIONS"],
      allowHeaders: ["Authorization", "Content-Type"],
      maxAge: 600,
    })(c, next);
  });
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
    const s = settingsOf(c.env);
    const h = discoveryHeaders(s instanceof Response ? 0 : maxUploadSize(s));
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
}

/** Creates the video record (enforcing the per-user limit) and its upload object; a Response when refused. */
async function createVideo(env: Env, ownerId: string, input: NewVideo, s: VideoSettings): Promise<{ video: VideoRecord } | Response> {
  const refused = sizeRefusal(input.size, s);
  if (refused) return tusRefusal(refused.status, refused.code, refused.message, { "Tus-Max-Size": String(maxUploadSize(s)) });
  const now = Date.now();
  const id = newId("vid");
  const expiresAt = now + s.uploadExpiryS * 1000;
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
  };
  const library = env.VideoLibrary.getByName(ownerId);
  const created = await library.create(record, s.maxConcurrentUploads);
  if (!created.ok) return tusRefusal(created.code === "too_many_uploads" ? 429 : 409, created.code, created.message);
  try {
    await env.UploadSession.getByName(id).init({ videoId: id, ownerId, length: input.size, partBytes: s.partBytes, maxChunkBytes: s.maxChunkBytes, expiresAt, filename: record.filename, contentType: input.contentType });
  } catch (error) {
    await library.remove(id);
    throw error;
  }
  return { video: record };
}

function uploadUrl(requestUrl: string, id: string): string {
  return new URL(`/uploads/${id}`, requestUrl).toString();
}

/** A video as the API shows it: URLs built here, never raw keys only. */
export function videoView(env: Env, v: VideoRecord, requestUrl: string) {
  const url = (key: string | undefined) => (key ? playbackUrl(env, key) : undefined);
  const playable = v.status === "playable" || v.status === "ready";
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
    playbackUrl: playable ? (url(v.keys.master) ?? v.announcedPlaybackUrl ?? undefined) : undefined,
    posterUrl: url(v.keys.poster),
    storyboardUrl: url(v.keys.storyboard),
    storyboardJsonUrl: url(v.keys.storyboardJson),
    thumbnailUrls: v.keys.thumbnails?.map((k) => url(k)!),
    renditions: v.renditions,
    failure: v.failure,
    streamId: v.streamId ?? undefined,
    upload: v.status === "uploading" && v.uploadExpiresAt ? { url: uploadUrl(requestUrl, v.id), expiresAt: new Date(v.uploadExpiresAt).toISOString() } : undefined,
  };
}

// ---- tus -------------------------------------------------------------------------------------------------

videoRoutes.post("/uploads", requireUser(), async (c) => {
  const s = settingsOf(c.env);
  if (s instanceof Response) return s;
  const h = c.req.raw.headers;
  const bad = checkTusResumable(h);
  if (bad) return tusRefusal(bad.status, bad.code, bad.message, { "Tus-Version": "1.0.0" });
  if (h.has("Upload-Defer-Length")) return tusRefusal(400, "defer_length_unsupported", "Upload-Length must be known at creation (creation-defer-length is not supported)");
  const length = parseNonNegative(h.get("Upload-Length"), "Upload-Length");
  if (!length.ok) return tusRefusal(length.error.status, length.error.code, length.error.message);
  const meta = parseUploadMetadata(h.get("Upload-Metadata"));
  if (!meta.ok) return tusRefusal(meta.error.status, meta.error.code, meta.error.message);
  const m = meta.metadata;
  const created = await createVideo(c.env, c.var.user.userId, { size: length.value, filename: m.filename ?? m.name ?? "", title: m.title ?? "", contentType: m.filetype ?? m.type ?? "" }, s);
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
  const s = settingsOf(c.env);
  if (s instanceof Response) return s;
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    return errorResponse(400, "invalid_json", "the body must be JSON: {size, filename?, title?, contentType?}");
  }
  const b = (body ?? {}) as Record<string, unknown>;
  const size = b.size;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) return errorResponse(400, "invalid_size", "size must be the file's length in bytes");
  const str = (v: unknown, max: number) => (typeof v === "string" ? v.slice(0, max) : "");
  const created = await createVideo(c.env, c.var.user.userId, { size, filename: str(b.filename, 255), title: str(b.title, 200), contentType: str(b.contentType, 255) }, s);
  if (created instanceof Response) return created;
  return c.json({ video: videoView(c.env, created.video, c.req.url), upload: { url: uploadUrl(c.req.url, created.video.id), maxChunkBytes: s.maxChunkBytes } }, 201);
});

videoRoutes.get("/videos", requireUser(), async (c) => {
  const s = settingsOf(c.env);
  if (s instanceof Response) return s;
  const limitRaw = c.req.query("limit");
  const beforeRaw = c.req.query("before");
  const limit = limitRaw === undefined ? s.pageLimit : Number(limitRaw);
  const before = beforeRaw === undefined ? undefined : Number(beforeRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) return errorResponse(400, "invalid_limit", "limit must be 1-100");
  if (before !== undefined && (!Number.isInteger(before) || before < 1)) return errorResponse(400, "invalid_before", "before must be a positive integer from nextBefore");
  const page = await c.env.VideoLibrary.getByName(c.var.user.userId).list({ before, limit });
  return c.json({ videos: page.videos.map((v) => videoView(c.env, v, c.req.url)), ...(page.nextBefore ? { nextBefore: page.nextBefore } : {}) });
});

videoRoutes.get("/videos/:id", requireUser(), async (c) => {
  const v = await c.env.VideoLibrary.getByName(c.var.user.userId).get(c.req.param("id"));
  if (!v) return errorResponse(404, "video_not_found", "no such video");
  return c.json({ video: videoView(c.env, v, c.req.url) });
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
  const outputs = v.keys.master ? v.keys.master.slice(0, v.keys.master.lastIndexOf("/") + 1) : `vod/${id}/`;
  const removed = (await deletePrefix(c.env.MEDIA, outputs)) + (await deletePrefix(c.env.MEDIA, `uploads/${id}/`));
  await library.remove(id);
  return c.json({ deleted: true, objects: removed });
});

// Media nodes in production read sources from R2 over the S3 API. In local runs the bucket is the Worker's
// simulation, which only the Worker can read: this streams an upload's source to a node that has the token.
videoRoutes.get("/internal/media/uploads/:id/source", requireInternalToken(), async (c) => {
  const id = c.req.param("id");
  if (!VIDEO_ID.test(id)) return errorResponse(404, "not_found", "no such object");
  const object = await c.env.MEDIA.get(sourceKeyOf(id));
  if (!object) return errorResponse(404, "not_found", "no such object");
  return new Response(object.body, { headers: { "content-type": object.httpMetadata?.contentType ?? "application/octet-stream", "content-length": String(object.size) } });
});
