// A minimal tus 1.0 client written from the protocol text (https://tus.io/protocols/resumable-upload), for
// tests: creation (optionally with the first chunk), HEAD, PATCH in chunks, resume from the server's offset.
// It keeps its upload URL the way tus-js-client keeps it across a page reload (a fingerprint -> URL map).

import { encodeUploadMetadata } from "../../src/videos/tus.ts";

export type Fetch = (url: string, init?: RequestInit) => Promise<Response>;

export interface TusClientOptions {
  fetch: Fetch;
  endpoint: string;
  token: string;
  chunkSize: number;
  /** what tus-js-client keeps in localStorage: survives a "reload" (a new client with the same store) */
  store: Map<string, string>;
}

export class TusClient {
  readonly o: TusClientOptions;
  constructor(o: TusClientOptions) {
    this.o = o;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { "Tus-Resumable": "1.0.0", Authorization: `Bearer ${this.o.token}`, ...extra };
  }

  async create(size: number, metadata: Record<string, string>, firstChunk?: Uint8Array): Promise<{ url: string; offset: number; res: Response }> {
    const headers = this.headers({ "Upload-Length": String(size), "Upload-Metadata": encodeUploadMetadata(metadata) });
    const init: RequestInit = { method: "POST", headers };
    if (firstChunk) {
      headers["Content-Type"] = "application/offset+octet-stream";
      init.body = firstChunk as Uint8Array<ArrayBuffer>;
    }
    const res = await this.o.fetch(this.o.endpoint, init);
    if (res.status !== 201) throw new Error(`creation answered ${res.status}: ${await res.text()}`);
    const url = res.headers.get("Location")!;
    return { url, offset: Number(res.headers.get("Upload-Offset") ?? 0), res };
  }

  async offset(url: string): Promise<Response> {
    return this.o.fetch(url, { method: "HEAD", headers: this.headers() });
  }

  async patch(url: string, offset: number, body: BodyInit, contentLength?: number): Promise<Response> {
    const extra: Record<string, string> = { "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" };
    if (contentLength !== undefined) extra["Content-Length"] = String(contentLength);
    return this.o.fetch(url, { method: "PATCH", headers: this.headers(extra), body });
  }

  /** Uploads `file` from the server's offset to the end, chunk by chunk; resumes a stored upload for `fingerprint`. */
  async upload(file: Uint8Array, fingerprint: string, metadata: Record<string, string>): Promise<{ url: string; resumedFrom: number | undefined }> {
    let url = this.o.store.get(fingerprint);
    let offset = 0;
    let resumedFrom: number | undefined;
    if (url) {
      const head = await this.offset(url);
      if (head.ok) {
        offset = Number(head.headers.get("Upload-Offset"));
        resumedFrom = offset;
      } else url = undefined; // 404/410: start over, as tus-js-client does
    }
    if (!url) {
      const created = await this.create(file.byteLength, metadata);
      url = created.url;
      this.o.store.set(fingerprint, url);
    }
    while (offset < file.byteLength) {
      const chunk = file.subarray(offset, Math.min(file.byteLength, offset + this.o.chunkSize));
      const res = await this.patch(url, offset, chunk as Uint8Array<ArrayBuffer>);
      if (res.status !== 204) throw new Error(`PATCH at ${offset} answered ${res.status}: ${await res.text()}`);
      offset = Number(res.headers.get("Upload-Offset"));
    }
    return { url, resumedFrom };
  }
}

/** A body that delivers `bytes` and then fails, as a connection cut in the middle of a chunk does. */
export function cutStream(bytes: Uint8Array, cutAfter: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= cutAfter) return controller.error(new Error("connection reset"));
      const n = Math.min(64 * 1024, cutAfter - sent);
      controller.enqueue(bytes.slice(sent, sent + n));
      sent += n;
    },
  });
}

/** Deterministic pseudo-random bytes (a file whose every byte matters). */
export function fileBytes(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
