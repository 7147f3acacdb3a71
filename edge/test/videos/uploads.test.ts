// tus uploads into R2 through the UploadSession object, and the videos API, in workerd with the real R2 and
// Durable Object simulations. The client is tus from the protocol text (tus-client.ts).

import { env, exports } from "cloudflare:workers";
import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { makeEvent } from "../../../shared/envelope.ts";
import { mintHs256 } from "../../../test/helpers/jwt.ts";
import { uploadedEventId } from "../../src/videos/library.ts";
import { cutStream, fileBytes, type Fetch, TusClient } from "./tus-client.ts";

const MiB = 1024 * 1024;
const fetchEdge: Fetch = (url, init) => exports.default.fetch(new Request(url, init));
const ENDPOINT = "http://edge/uploads";
let n = 0;
const newUser = () => `up-${Date.now().toString(36)}-${(n++).toString(36)}`;
const tokenFor = (sub: string) => mintHs256(env.JWT_SECRET!, { sub });

async function clientFor(user: string, chunkSize = 6 * MiB, store = new Map<string, string>()): Promise<TusClient> {
  return new TusClient({ fetch: fetchEdge, endpoint: ENDPOINT, token: await tokenFor(user), chunkSize, store });
}

async function sourceOf(url: string): Promise<Uint8Array | null> {
  const id = new URL(url).pathname.split("/").at(-1)!;
  const o = await env.MEDIA.get(`uploads/${id}/source`);
  return o ? new Uint8Array(await o.arrayBuffer()) : null;
}

async function api(user: string, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("Authorization", `Bearer ${await tokenFor(user)}`);
  return fetchEdge(`http://edge${path}`, { ...init, headers });
}

const idOf = (url: string) => new URL(url).pathname.split("/").at(-1)!;

// Tens of MiB through the R2 simulation take seconds on a loaded 2-core machine.
describe("tus uploads", { timeout: 60_000 }, () => {
  it("browsers may call it: tus headers are exposed, the videos API answers preflights with DELETE allowed", async () => {
    const pre = await fetchEdge("http://edge/videos/vid_x", { method: "OPTIONS", headers: { Origin: "https://app.test", "Access-Control-Request-Method": "DELETE" } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("Access-Control-Allow-Methods")).toContain("DELETE");
    const tus = await fetchEdge(ENDPOINT, { method: "OPTIONS", headers: { Origin: "https://app.test", "Access-Control-Request-Method": "PATCH" } });
    expect(tus.headers.get("Access-Control-Allow-Headers")).toContain("Upload-Offset");
    expect(tus.headers.get("Access-Control-Allow-Origin")).toBe("*");
  });

  it("OPTIONS tells what the server speaks", async () => {
    const res = await fetchEdge(ENDPOINT, { method: "OPTIONS" });
    expect(res.status).toBe(204);
    expect(res.headers.get("Tus-Version")).toBe("1.0.0");
    expect(res.headers.get("Tus-Extension")).toBe("creation,creation-with-upload,expiration,termination");
    expect(Number(res.headers.get("Tus-Max-Size"))).toBeGreaterThan(0);
  });

  it("uploads a file in chunks into one R2 object, byte for byte, and queues it for the media nodes once", async () => {
    const user = newUser();
    const file = fileBytes(23 * MiB + 12345, 7);
    const tus = await clientFor(user, 7 * MiB);
    const { url } = await tus.upload(file, "f1", { filename: "holiday.mp4", filetype: "video/mp4", title: "Holiday ☀" });
    expect(await sourceOf(url)).toEqual(file);
    expect(await env.MEDIA.get(`uploads/${idOf(url)}/tail`)).toBeNull();

    const res = await api(user, `/videos/${idOf(url)}`);
    expect(res.status).toBe(200);
    const { video } = (await res.json()) as { video: Record<string, unknown> };
    expect(video).toMatchObject({ id: idOf(url), title: "Holiday ☀", filename: "holiday.mp4", size: file.byteLength, status: "queued" });
    expect(video.playbackUrl).toBeUndefined();

    // The job is in the outbox of the owner's video library, once, under an id derived from the video.
    const pending = (await env.VideoLibrary.getByName(user).outboxPending()).map((text) => JSON.parse(text) as { id: string; type: string; data: { key: string } });
    expect(pending.map((e) => [e.id, e.type, e.data.key])).toEqual([[uploadedEventId(idOf(url)), "media.uploaded", `uploads/${idOf(url)}/source`]]);
    // Operators see it as the outbox `videos/<userId>`.
    const shard = await fetchEdge(`http://edge/internal/bus/outbox/${encodeURIComponent(`videos/${user}`)}`, { headers: { Authorization: `Bearer ${env.INTERNAL_API_TOKEN}` } });
    expect(shard.status).toBe(200);
    expect(((await shard.json()) as { pending: number; pendingEvents: { id: string }[] }).pendingEvents.map((e) => e.id)).toEqual([uploadedEventId(idOf(url))]);
    const again = await tus.offset(url);
    expect(again.status).toBe(200);
    expect(again.headers.get("Upload-Offset")).toBe(String(file.byteLength));
  });

  it("creation-with-upload: the first chunk rides on the POST", async () => {
    const user = newUser();
    const file = fileBytes(3 * MiB, 3);
    const tus = await clientFor(user);
    const created = await tus.create(file.byteLength, { filename: "a.mp4" }, file.subarray(0, MiB));
    expect(created.offset).toBe(MiB);
    expect(created.res.headers.get("Upload-Expires")).toMatch(/GMT$/);
    const rest = await tus.patch(created.url, MiB, file.subarray(MiB));
    expect(rest.status).toBe(204);
    expect(await sourceOf(created.url)).toEqual(file);
  });

  it("resumes after a connection cut mid-chunk and after a page reload, keeping every byte that arrived", async () => {
    const user = newUser();
    const file = fileBytes(14 * MiB + 777, 11);
    const store = new Map<string, string>();
    const tus = await clientFor(user, 8 * MiB, store);
    const { url } = await tus.create(file.byteLength, { filename: "long.mov" });
    store.set("long", url);
    // First chunk: 8 MiB meant, the connection dies after 6.5 MiB (the client never sees an answer).
    await tus.patch(url, 0, cutStream(file, 6.5 * MiB)).catch(() => undefined);
    const head = await tus.offset(url);
    expect(head.status).toBe(200);
    expect(Number(head.headers.get("Upload-Offset"))).toBe(6.5 * MiB);
    // "Reload": a new client with the same stored fingerprint resumes from the server's offset.
    const reloaded = await clientFor(user, 8 * MiB, store);
    const done = await reloaded.upload(file, "long", { filename: "long.mov" });
    expect(done.resumedFrom).toBe(6.5 * MiB);
    expect(await sourceOf(url)).toEqual(file);
  });

  it("refuses bad requests with tus's statuses, storing nothing", async () => {
    const user = newUser();
    const tus = await clientFor(user);
    const { url } = await tus.create(8 * MiB, { filename: "x.mp4" });
    const token = await tokenFor(user);
    const h = (extra: Record<string, string>) => ({ Authorization: `Bearer ${token}`, ...extra });

    // wrong offset: 409 with the real one
    const wrong = await tus.patch(url, 100, new Uint8Array(10));
    expect(wrong.status).toBe(409);
    expect(wrong.headers.get("Upload-Offset")).toBe("0");
    // missing / wrong Tus-Resumable: 412
    expect((await fetchEdge(url, { method: "PATCH", headers: h({ "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream" }), body: new Uint8Array(1) })).status).toBe(412);
    expect((await fetchEdge(ENDPOINT, { method: "POST", headers: h({ "Tus-Resumable": "0.2.2", "Upload-Length": "10" }) })).status).toBe(412);
    // garbage headers: 400
    const garbage: Record<string, string>[] = [{ "Upload-Length": "-1" }, { "Upload-Length": "1e6" }, {}, { "Upload-Length": "10", "Upload-Metadata": "filename not*base64" }, { "Upload-Length": "10", "Upload-Metadata": "a YQ==,a YQ==" }];
    for (const bad of garbage) {
      const res = await fetchEdge(ENDPOINT, { method: "POST", headers: h({ "Tus-Resumable": "1.0.0", ...bad }) });
      expect(res.status, JSON.stringify(bad)).toBe(400);
    }
    expect((await fetchEdge(url, { method: "PATCH", headers: h({ "Tus-Resumable": "1.0.0", "Upload-Offset": "zero", "Content-Type": "application/offset+octet-stream" }), body: new Uint8Array(1) })).status).toBe(400);
    // wrong content type: 415
    expect((await fetchEdge(url, { method: "PATCH", headers: h({ "Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "video/mp4" }), body: new Uint8Array(1) })).status).toBe(415);
    // over the size limit: 413 with Tus-Max-Size
    const huge = await fetchEdge(ENDPOINT, { method: "POST", headers: h({ "Tus-Resumable": "1.0.0", "Upload-Length": String(64 * 1024 * MiB) }) });
    expect(huge.status).toBe(413);
    expect(Number(huge.headers.get("Tus-Max-Size"))).toBeGreaterThan(0);
    // a body running past Upload-Length: 413, what fit is kept
    const past = await tus.patch(url, 0, fileBytes(9 * MiB));
    expect(past.status).toBe(413);
    // no token: 401
    expect((await fetchEdge(url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } })).status).toBe(401);
    expect(await sourceOf(url)).toBeNull();
  });

  it("someone else's upload and video are not found", async () => {
    const alice = newUser();
    const tus = await clientFor(alice);
    const { url } = await tus.create(MiB, { filename: "mine.mp4" });
    const mallory = await clientFor(newUser());
    expect((await mallory.offset(url)).status).toBe(404);
    expect((await mallory.patch(url, 0, new Uint8Array(10))).status).toBe(404);
    const other = newUser();
    expect((await api(other, `/videos/${idOf(url)}`)).status).toBe(404);
    expect((await api(other, `/videos/${idOf(url)}`, { method: "DELETE" })).status).toBe(404);
    expect((await tus.offset(url)).status).toBe(200);
  });

  it("termination drops the parts; the upload is gone", async () => {
    const user = newUser();
    const tus = await clientFor(user);
    const file = fileBytes(12 * MiB);
    const { url } = await tus.create(file.byteLength, { filename: "t.mp4" });
    expect((await tus.patch(url, 0, file.subarray(0, 11 * MiB))).status).toBe(204);
    const del = await fetchEdge(url, { method: "DELETE", headers: { "Tus-Resumable": "1.0.0", Authorization: `Bearer ${await tokenFor(user)}` } });
    expect(del.status).toBe(204);
    expect((await tus.offset(url)).status).toBe(404);
    expect(await env.MEDIA.get(`uploads/${idOf(url)}/tail`)).toBeNull();
  });

  it("an expired upload answers 410, its multipart upload is aborted and the video fails as expired", async () => {
    const user = newUser();
    const tus = await clientFor(user);
    const file = fileBytes(12 * MiB, 5);
    const { url } = await tus.create(file.byteLength, { filename: "late.mp4" });
    expect((await tus.patch(url, 0, file.subarray(0, 11 * MiB))).status).toBe(204);
    const stub = env.UploadSession.getByName(idOf(url));
    // Let the clock run out: move the expiry into the past, then fire the alarm.
    let multipart = { id: "", key: "" };
    await runInSession(stub, async (state) => {
      const s = (await state.storage.get("upload")) as { expiresAt: number; multipartId: string; sourceKey: string };
      multipart = { id: s.multipartId, key: s.sourceKey };
      s.expiresAt = Date.now() - 1;
      await state.storage.put("upload", s);
      await state.storage.setAlarm(Date.now() + 10);
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await tus.offset(url)).status).toBe(410);
    expect((await tus.patch(url, 11 * MiB, file.subarray(11 * MiB))).status).toBe(410);
    expect(await env.MEDIA.get(`uploads/${idOf(url)}/tail`)).toBeNull();
    // The multipart upload was aborted: R2 takes no more parts for it.
    await expect(env.MEDIA.resumeMultipartUpload(multipart.key, multipart.id).uploadPart(2, new Uint8Array(5 * MiB))).rejects.toThrow();
    const { video } = (await (await api(user, `/videos/${idOf(url)}`)).json()) as { video: { status: string; failure: { reason: string } } };
    expect(video.status).toBe("failed");
    expect(video.failure.reason).toMatch(/expired/);
  });

  it("limits uploads in progress per user (429), counting only unfinished ones", async () => {
    const user = newUser();
    const tus = await clientFor(user);
    for (let i = 0; i < 3; i++) await tus.create(MiB, { filename: `${i}.mp4` });
    const res = await fetchEdge(ENDPOINT, { method: "POST", headers: { "Tus-Resumable": "1.0.0", "Upload-Length": "100", Authorization: `Bearer ${await tokenFor(user)}` } });
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("too_many_uploads");
  });
});

describe("videos API", { timeout: 60_000 }, () => {
  it("POST /videos creates a video and hands back its tus URL", async () => {
    const user = newUser();
    const res = await api(user, "/videos", { method: "POST", body: JSON.stringify({ size: 2 * MiB, filename: "clip.mp4", title: "Clip" }), headers: { "content-type": "application/json" } });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { video: { id: string; status: string; upload: { url: string } }; upload: { url: string; maxChunkBytes: number } };
    expect(body.video).toMatchObject({ status: "uploading", title: "Clip" });
    expect(body.upload.maxChunkBytes).toBe(50 * MiB);
    const tus = await clientFor(user);
    expect((await tus.patch(body.upload.url, 0, fileBytes(2 * MiB))).status).toBe(204);
    expect((await (await api(user, `/videos/${body.video.id}`)).json()) as object).toMatchObject({ video: { status: "queued" } });
    expect((await api(user, "/videos", { method: "POST", body: "{", headers: { "content-type": "application/json" } })).status).toBe(400);
    expect((await api(user, "/videos", { method: "POST", body: JSON.stringify({ size: "big" }) })).status).toBe(400);
  });

  it("media events move a video along exactly once; GET /videos pages newest first; DELETE removes every object", async () => {
    const user = newUser();
    const tus = await clientFor(user);
    const file = fileBytes(MiB);
    const { url } = await tus.upload(file, "v", { filename: "v.mp4", title: "V" });
    const id = idOf(url);
    const library = env.VideoLibrary.getByName(user);
    const src = { source: "media-node/n1", subject: `media/${id}` };
    const progress = makeEvent("media.progress", { mediaId: id, ownerId: user, stage: "transcode", percent: 40 }, src);
    const renditions = [{ name: "720p", width: 1280, height: 720, bandwidth: 3_500_000, codecs: "avc1.64001f,mp4a.40.2" }];
    const playable = makeEvent("media.playable", { mediaId: id, ownerId: user, playbackUrl: "https://cdn.test/vod/x/master.m3u8", masterKey: `vod/${id}/master.m3u8`, renditions }, src);
    const keys = { master: `vod/${id}/master.m3u8`, poster: `vod/${id}/poster.jpg`, storyboard: `vod/${id}/storyboard.vtt`, storyboardJson: `vod/${id}/storyboard.json`, thumbnails: [`vod/${id}/thumbnails/1.jpg`] };
    const ready = makeEvent("media.ready", { mediaId: id, ownerId: user, playbackUrl: "https://cdn.test/vod/x/master.m3u8", durationS: 61.5, renditions, keys }, src);
    expect(await library.applyEvents([progress])).toEqual([{ id: progress.id, applied: true }]);
    expect(((await (await api(user, `/videos/${id}`)).json()) as { video: object }).video).toMatchObject({ status: "processing", progress: { stage: "transcode", percent: 40 } });
    await library.applyEvents([playable]);
    const whilePlayable = ((await (await api(user, `/videos/${id}`)).json()) as { video: { status: string; playbackUrl: string } }).video;
    expect(whilePlayable.status).toBe("playable");
    // Played through the edge's /play by the video's id (public by default).
    expect(whilePlayable.playbackUrl).toBe(`${env.PLAYBACK_BASE_URL}/play/${id}/master.m3u8`);
    expect(await library.applyEvents([ready, ready])).toEqual([
      { id: ready.id, applied: true },
      { id: ready.id, applied: false },
    ]);
    // A late progress report does not take a ready video back.
    await library.applyEvents([makeEvent("media.progress", { mediaId: id, ownerId: user, stage: "upload", percent: 99 }, src)]);
    const v = ((await (await api(user, `/videos/${id}`)).json()) as { video: Record<string, unknown> }).video;
    expect(v).toMatchObject({ status: "ready", durationS: 61.5, progress: null, posterUrl: `${env.PLAYBACK_BASE_URL}/play/${id}/poster.jpg`, storyboardUrl: `${env.PLAYBACK_BASE_URL}/play/${id}/storyboard.vtt`, playbackPolicy: "public" });
    expect(v.thumbnailUrls).toEqual([`${env.PLAYBACK_BASE_URL}/play/${id}/thumbnails/1.jpg`]);

    // A recording of a live broadcast (the live pipeline's media.ready: owner, stream, playback URL) appears next
    // to the uploads.
    const rec = makeEvent("media.ready", { mediaId: `rec-${id}`, ownerId: user, streamId: "studio1", playbackUrl: "https://cdn.test/live/studio1/b/vod.m3u8", durationS: 600 }, src);
    await library.applyEvents([rec]);
    const page1 = (await (await api(user, "/videos?limit=1")).json()) as { videos: { id: string; streamId?: string; status: string; playbackUrl: string }[]; nextBefore: number };
    expect(page1.videos.map((x) => x.id)).toEqual([`rec-${id}`]);
    expect(page1.videos[0]).toMatchObject({ streamId: "studio1", status: "ready", playbackUrl: "https://cdn.test/live/studio1/b/vod.m3u8" });
    const page2 = (await (await api(user, `/videos?limit=1&before=${page1.nextBefore}`)).json()) as { videos: { id: string }[]; nextBefore?: number };
    expect(page2.videos.map((x) => x.id)).toEqual([id]);
    expect(page2.nextBefore).toBeUndefined();
    expect((await api(user, "/videos?limit=0")).status).toBe(400);

    // Outputs as a media node would have stored them, then DELETE.
    for (const key of [keys.master, keys.poster, `vod/${id}/720p/e0-0.m4s`, `vod/${id}/ready.json`]) await env.MEDIA.put(key, "x");
    const del = await api(user, `/videos/${id}`, { method: "DELETE" });
    expect(del.status).toBe(200);
    expect((await env.MEDIA.list({ prefix: `vod/${id}/` })).objects).toEqual([]);
    expect((await env.MEDIA.list({ prefix: `uploads/${id}/` })).objects).toEqual([]);
    expect((await api(user, `/videos/${id}`)).status).toBe(404);
    expect((await tus.offset(url)).status).toBe(404);
  });

  it("a media node reads a source through the internal route: whole, by ranges, and HEAD for whether it still exists", async () => {
    const user = newUser();
    const file = fileBytes(3 * MiB + 7, 3);
    const { url } = await (await clientFor(user)).upload(file, "src", { filename: "s.mp4" });
    const id = idOf(url);
    const at = `http://edge/internal/media/uploads/${id}/source`;
    const auth = { Authorization: `Bearer ${env.INTERNAL_API_TOKEN}` };
    expect((await fetchEdge(at)).status).toBe(401);
    const whole = await fetchEdge(at, { headers: auth });
    expect(whole.status).toBe(200);
    expect(new Uint8Array(await whole.arrayBuffer())).toEqual(file);
    const mid = await fetchEdge(at, { headers: { ...auth, Range: "bytes=1000-1999" } });
    expect(mid.status).toBe(206);
    expect(mid.headers.get("content-range")).toBe(`bytes 1000-1999/${file.byteLength}`);
    expect(new Uint8Array(await mid.arrayBuffer())).toEqual(file.slice(1000, 2000));
    const tail = await fetchEdge(at, { headers: { ...auth, Range: `bytes=${file.byteLength - 10}-` } });
    expect(tail.status).toBe(206);
    expect(tail.headers.get("content-length")).toBe("10");
    expect(new Uint8Array(await tail.arrayBuffer())).toEqual(file.slice(-10));
    expect((await fetchEdge(at, { headers: { ...auth, Range: `bytes=${file.byteLength + 5}-` } })).status).toBe(416);
    expect((await fetchEdge(at, { headers: { ...auth, Range: "bytes=x" } })).status).toBe(416);
    const head = await fetchEdge(at, { method: "HEAD", headers: auth });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(file.byteLength));
    // After DELETE /videos/:id the source is gone: a node still processing the video sees it here.
    expect((await api(user, `/videos/${id}`, { method: "DELETE" })).status).toBe(200);
    expect((await fetchEdge(at, { method: "HEAD", headers: auth })).status).toBe(404);
    expect((await fetchEdge(at, { headers: auth })).status).toBe(404);
  });

  it("the ingress applies a signed media.ready to the owner's video record", async () => {
    // routeFor sends media.* with an owner to the owner's VideoLibrary too (dispatch.test.ts covers routing);
    // here: the real library takes the event through the RPC the ingress uses.
    const user = newUser();
    const ready = makeEvent("media.failed", { mediaId: "vid_unknown0000000", ownerId: user, stage: "probe", reason: "not a video" }, { source: "media-node/n", subject: "media/x" });
    expect(await env.VideoLibrary.getByName(user).applyEvents([ready])).toEqual([{ id: ready.id, applied: true }]);
  });
});

/** Runs `fn` inside the UploadSession object (test-only access to its storage). */
async function runInSession(stub: DurableObjectStub, fn: (state: DurableObjectState) => Promise<void>): Promise<void> {
  const { runInDurableObject } = await import("cloudflare:test");
  await runInDurableObject(stub, (_instance: unknown, state: DurableObjectState) => fn(state));
}
