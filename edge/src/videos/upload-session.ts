// One Durable Object per upload (named by the video id): the tus state of that upload and its R2 multipart
// upload. Requests for one upload are taken one at a time (a promise chain in the object), which is the lock
// tus needs without any lock service; a newer request stops an older PATCH that is still reading (a client
// that lost its connection resumes at once instead of waiting for the dead one to time out).
//
// Storage layout in R2 (binding MEDIA): the multipart upload of `uploads/<videoId>/source`, whose parts are all
// `partBytes` long (R2 wants equal non-final parts), and `uploads/<videoId>/tail`, the bytes received after the
// last full part. The offset the client is told is always what is stored: full parts plus the tail, so a
// connection cut in the middle of a chunk loses nothing that arrived.
//
// When the last byte is stored: the multipart upload is completed, then the owner's VideoLibrary marks the video
// `queued` and writes its `media.uploaded` (id derived from the video) into the outbox it carries, in one
// transaction. `announced` is recorded only after that, and the alarm retries until it is, so a crash in between
// only delays the job. The object stays after the upload (it names the video's owner, which /play asks it for)
// until the video is deleted.

import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env.ts";
import { checkTusResumable, httpDate, OFFSET_CONTENT_TYPE, parseNonNegative, tusHeaders } from "./tus.ts";

export const UPLOAD_OWNER_HEADER = "x-pulsecast-upload-owner";

export interface UploadInit {
  videoId: string;
  ownerId: string;
  length: number;
  partBytes: number;
  maxChunkBytes: number;
  expiresAt: number;
  filename: string;
  contentType: string;
}

interface UploadState extends UploadInit {
  sourceKey: string;
  multipartId: string;
  parts: { partNumber: number; etag: string }[];
  tailBytes: number;
  offset: number;
  status: "active" | "complete" | "expired" | "terminated";
  announced: boolean;
}

const STATE_KEY = "upload";
/** how soon the alarm retries announcing a complete upload */
const ANNOUNCE_RETRY_MS = 5_000;

export function sourceKeyOf(videoId: string): string {
  return `uploads/${videoId}/source`;
}

function tailKey(videoId: string): string {
  return `uploads/${videoId}/tail`;
}

function tusError(status: number, code: string, message: string, extra: Record<string, string> = {}): Response {
  const h = tusHeaders(extra);
  h.set("content-type", "application/json; charset=utf-8");
  return new Response(JSON.stringify({ error: { code, message } }), { status, headers: h });
}

export class UploadSession extends DurableObject<Env> {
  private queue: Promise<unknown> = Promise.resolve();
  /** stops the PATCH currently reading its body */
  private reading: AbortController | undefined;

  private async state(): Promise<UploadState | undefined> {
    return this.ctx.storage.get<UploadState>(STATE_KEY);
  }

  private async save(s: UploadState): Promise<void> {
    await this.ctx.storage.put(STATE_KEY, s);
  }

  /** One request at a time; a waiting request first stops a PATCH that is still reading. */
  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    this.reading?.abort();
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Creates the upload (and its R2 multipart upload). */
  async init(init: UploadInit): Promise<void> {
    await this.serialized(async () => {
      if (await this.state()) throw new Error(`upload ${init.videoId} exists`);
      const sourceKey = sourceKeyOf(init.videoId);
      const mp = await this.env.MEDIA.createMultipartUpload(sourceKey, { httpMetadata: { contentType: init.contentType || "application/octet-stream" } });
      await this.save({ ...init, sourceKey, multipartId: mp.uploadId, parts: [], tailBytes: 0, offset: 0, status: "active", announced: false });
      await this.ctx.storage.setAlarm(init.expiresAt);
    });
  }

  /** The user whose library holds this video (the id names this object), or null once it is deleted. */
  async ownerOf(): Promise<string | null> {
    const s = await this.state();
    return s && s.status !== "terminated" ? s.ownerId : null;
  }

  /** Offset and length for a HEAD, or null when there is no such upload for this owner. */
  async describe(ownerId: string): Promise<{ offset: number; length: number; expiresAt: number; status: UploadState["status"] } | null> {
    return this.serialized(async () => {
      const s = await this.state();
      if (!s || s.ownerId !== ownerId || s.status === "terminated") return null;
      return { offset: s.offset, length: s.length, expiresAt: s.expiresAt, status: s.status };
    });
  }

  override async fetch(request: Request): Promise<Response> {
    const owner = request.headers.get(UPLOAD_OWNER_HEADER);
    if (!owner) return tusError(401, "unauthenticated", "no verified user");
    const bad = checkTusResumable(request.headers);
    if (bad) return tusError(bad.status, bad.code, bad.message, { "Tus-Version": "1.0.0" });
    switch (request.method) {
      case "HEAD":
        return this.serialized(() => this.head(owner));
      case "PATCH":
        return this.serialized(() => this.patch(owner, request));
      case "DELETE":
        return this.serialized(() => this.terminate(owner));
      default:
        return tusError(405, "method_not_allowed", `${request.method} is not a tus method here`, { Allow: "HEAD, PATCH, DELETE, OPTIONS" });
    }
  }

  /** Someone else's upload answers exactly like a missing one: 404 (it is not theirs to know about). */
  private async mine(owner: string): Promise<UploadState | Response> {
    const s = await this.state();
    if (!s || s.ownerId !== owner || s.status === "terminated") return tusError(404, "upload_not_found", "no such upload");
    if (s.status === "expired" || (s.status === "active" && Date.now() >= s.expiresAt)) return tusError(410, "upload_expired", "the upload expired before it was complete; start a new one");
    return s;
  }

  private async head(owner: string): Promise<Response> {
    const s = await this.mine(owner);
    if (s instanceof Response) return new Response(null, { status: s.status, headers: s.headers });
    if (s.status === "complete" && !s.announced) await this.announce(s);
    return new Response(null, {
      status: 200,
      headers: tusHeaders({ "Upload-Offset": String(s.offset), "Upload-Length": String(s.length), ...(s.status === "active" ? { "Upload-Expires": httpDate(s.expiresAt) } : {}) }),
    });
  }

  private async patch(owner: string, request: Request): Promise<Response> {
    const found = await this.mine(owner);
    if (found instanceof Response) return found;
    const s = found;
    if ((request.headers.get("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase() !== OFFSET_CONTENT_TYPE) {
      return tusError(415, "tus_content_type", `a PATCH body must be Content-Type: ${OFFSET_CONTENT_TYPE}`);
    }
    const offset = parseNonNegative(request.headers.get("Upload-Offset"), "Upload-Offset");
    if (!offset.ok) return tusError(offset.error.status, offset.error.code, offset.error.message);
    if (offset.value !== s.offset) return tusError(409, "offset_mismatch", `Upload-Offset is ${offset.value} but ${s.offset} bytes are stored; HEAD the upload and resume from there`, { "Upload-Offset": String(s.offset) });
    const declared = request.headers.get("Content-Length");
    if (declared !== null && Number(declared) > s.maxChunkBytes) return tusError(413, "chunk_too_large", `a PATCH may carry at most ${s.maxChunkBytes} bytes; send smaller chunks`);
    if (declared !== null && s.offset + Number(declared) > s.length) return tusError(413, "beyond_upload_length", `the chunk ends past Upload-Length (${s.length})`);
    if (s.status === "complete") return new Response(null, { status: 204, headers: tusHeaders({ "Upload-Offset": String(s.offset) }) });

    const result = await this.receive(s, request.body);
    if (result.error) return result.error;
    if (s.offset === s.length) await this.complete(s);
    return new Response(null, { status: 204, headers: tusHeaders({ "Upload-Offset": String(s.offset), ...(s.status === "active" ? { "Upload-Expires": httpDate(s.expiresAt) } : {}) }) });
  }

  /** Reads the body into full parts and a tail, storing as it goes; on any stop keeps what arrived. */
  private async receive(s: UploadState, body: ReadableStream<Uint8Array> | null): Promise<{ error?: Response }> {
    const mp = this.env.MEDIA.resumeMultipartUpload(s.sourceKey, s.multipartId);
    // Received bytes wait as a list of chunks and are joined once per part (joining on every chunk would copy
    // the growing part again for each chunk).
    const chunks: Uint8Array[] = [];
    let buffered = 0;
    const take = (bytes: Uint8Array) => {
      chunks.push(bytes);
      buffered += bytes.byteLength;
    };
    const joinAll = (): Uint8Array<ArrayBuffer> => {
      const out = new Uint8Array(buffered);
      let at = 0;
      for (const c of chunks) {
        out.set(c, at);
        at += c.byteLength;
      }
      return out;
    };
    if (s.tailBytes > 0) {
      const tail = await this.env.MEDIA.get(tailKey(s.videoId));
      if (!tail) throw new Error(`tail of ${s.videoId} missing`);
      take(new Uint8Array(await tail.arrayBuffer()));
    }
    const startTail = s.tailBytes;
    const startOffset = s.offset;
    let received = 0;
    let error: Response | undefined;
    const abort = new AbortController();
    this.reading = abort;
    const reader = body?.getReader();
    const stop = () => void reader?.cancel("a newer request for this upload arrived").catch(() => undefined);
    abort.signal.addEventListener("abort", stop, { once: true });
    try {
      while (reader) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch {
          break; // connection cut: keep what arrived
        }
        if (chunk.done) break;
        if (startOffset + received + chunk.value.byteLength > s.length) {
          error = tusError(413, "beyond_upload_length", `the body runs past Upload-Length (${s.length}); nothing past it is kept`);
          break;
        }
        if (received + chunk.value.byteLength > s.maxChunkBytes) {
          error = tusError(413, "chunk_too_large", `a PATCH may carry at most ${s.maxChunkBytes} bytes`);
          break;
        }
        received += chunk.value.byteLength;
        take(chunk.value);
        if (buffered < s.partBytes) continue;
        let all = joinAll();
        chunks.length = 0;
        buffered = 0;
        while (all.byteLength >= s.partBytes) {
          const partNumber = s.parts.length + 1;
          const part = await mp.uploadPart(partNumber, all.subarray(0, s.partBytes));
          all = all.subarray(s.partBytes);
          s.parts.push({ partNumber: part.partNumber, etag: part.etag });
          // The old tail is inside this part now; what is left waits in memory until the tail is written below.
          s.tailBytes = 0;
          s.offset = s.parts.length * s.partBytes;
          await this.save(s);
        }
        if (all.byteLength) take(all);
      }
    } finally {
      abort.signal.removeEventListener("abort", stop);
      if (this.reading === abort) this.reading = undefined;
      reader?.releaseLock();
    }
    // What is left (below one part) becomes the tail.
    if (buffered !== startTail || received > 0) {
      if (buffered > 0) await this.env.MEDIA.put(tailKey(s.videoId), joinAll());
      else await this.env.MEDIA.delete(tailKey(s.videoId));
      s.tailBytes = buffered;
      s.offset = s.parts.length * s.partBytes + s.tailBytes;
      await this.save(s);
    }
    return error ? { error } : {};
  }

  /** The last byte is stored: the tail becomes the last part, the object is assembled, the video is announced. */
  private async complete(s: UploadState): Promise<void> {
    const mp = this.env.MEDIA.resumeMultipartUpload(s.sourceKey, s.multipartId);
    if (s.tailBytes > 0 || s.parts.length === 0) {
      const tail = s.tailBytes > 0 ? await this.env.MEDIA.get(tailKey(s.videoId)) : null;
      const bytes = tail ? new Uint8Array(await tail.arrayBuffer()) : new Uint8Array(0);
      const part = await mp.uploadPart(s.parts.length + 1, bytes);
      s.parts.push({ partNumber: part.partNumber, etag: part.etag });
    }
    await mp.complete(s.parts);
    await this.env.MEDIA.delete(tailKey(s.videoId));
    s.status = "complete";
    s.tailBytes = 0;
    await this.save(s);
    await this.ctx.storage.deleteAlarm();
    await this.announce(s);
  }

  private async announce(s: UploadState): Promise<void> {
    try {
      await this.env.VideoLibrary.getByName(s.ownerId).uploaded(s.videoId, { bytes: s.length, key: s.sourceKey, contentType: s.contentType });
      s.announced = true;
      await this.save(s);
    } catch (error) {
      console.error(`upload ${s.videoId}: not announced yet, retrying`, error);
      await this.ctx.storage.setAlarm(Date.now() + ANNOUNCE_RETRY_MS);
    }
  }

  /** tus termination: the parts are dropped; the video's record goes with DELETE /videos/:id. */
  private async terminate(owner: string): Promise<Response> {
    const s = await this.state();
    if (!s || s.ownerId !== owner || s.status === "terminated") return tusError(404, "upload_not_found", "no such upload");
    await this.discard(s, "terminated");
    return new Response(null, { status: 204, headers: tusHeaders() });
  }

  /** Drops everything of an unfinished upload (abort the multipart, delete the tail). */
  private async discard(s: UploadState, status: "terminated" | "expired"): Promise<void> {
    if (s.status === "active") {
      await this.env.MEDIA.resumeMultipartUpload(s.sourceKey, s.multipartId)
        .abort()
        .catch((error: unknown) => console.warn(`upload ${s.videoId}: abort failed (R2 drops incomplete uploads after 7 days)`, error));
      await this.env.MEDIA.delete(tailKey(s.videoId));
    }
    s.status = status;
    s.tailBytes = 0;
    await this.save(s);
    await this.ctx.storage.deleteAlarm();
  }

  /** Removes the upload entirely (DELETE /videos/:id): parts, tail and this object's state. */
  async destroy(): Promise<void> {
    await this.serialized(async () => {
      const s = await this.state();
      if (s && s.status === "active") await this.discard(s, "terminated");
      await this.ctx.storage.deleteAll();
    });
  }

  override async alarm(): Promise<void> {
    await this.serialized(async () => {
      const s = await this.state();
      if (!s) return;
      if (s.status === "complete" && !s.announced) return this.announce(s);
      if (s.status === "active" && Date.now() >= s.expiresAt) {
        await this.discard(s, "expired");
        await this.env.VideoLibrary.getByName(s.ownerId).expired(s.videoId);
      }
    });
  }
}
