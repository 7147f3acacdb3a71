// FFmpeg reading an upload while it is still being downloaded. The whole source is copied to a local file in the
// background, and a loopback HTTP server hands FFmpeg (and ffprobe) byte ranges of it: a range inside what has
// arrived, or just ahead of it, is served from the file as it grows; a range far ahead of the download (the index
// of an MP4 written at its end, which FFmpeg reads first) is read straight from storage. So the encode starts
// after the first bytes and the index instead of after the whole file, and a file whose tracks are stored apart
// (FFmpeg seeking back and forth) still costs local reads, not requests to storage.
//
// The server listens on 127.0.0.1 under a random path, so no other process guesses it, and the storage
// credentials never appear on FFmpeg's command line.

import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { type FileHandle, open } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { SourceReader } from "./source.ts";

/** A read this far ahead of the download at most waits for it; further ahead it goes to storage. */
export const NEAR_BYTES = 16 * 1024 * 1024;
const CHUNK = 256 * 1024;

export class SourceServer {
  readonly url: string;
  /** settles when the whole source is in the local file (rejects with the reason it could not be) */
  readonly downloaded: Promise<void>;
  readonly #reader: SourceReader;
  readonly #server: Server;
  readonly #path: string;
  readonly #file: string;
  readonly #near: number;
  readonly #abort = new AbortController();
  /** bytes in the local file, readable */
  #have = 0;
  #failed: Error | undefined;
  #broken: Error | undefined;
  readonly #waiters = new Set<() => void>();

  private constructor(reader: SourceReader, file: string, server: Server, port: number, path: string, nearBytes: number) {
    this.#near = nearBytes;
    this.#reader = reader;
    this.#server = server;
    this.#path = path;
    this.#file = file;
    this.url = `http://127.0.0.1:${port}${path}`;
    this.downloaded = this.#download(file);
    // Nobody may be waiting on it; the failure is reported through waiting reads and `broken`.
    this.downloaded.catch(() => undefined);
  }

  /** Starts downloading `reader` into `file` and serving it. */
  static async start(reader: SourceReader, file: string, opts: { nearBytes?: number } = {}): Promise<SourceServer> {
    let self: SourceServer | undefined;
    const server = createServer((req, res) => void self?.handle(req, res));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as { port: number }).port;
    self = new SourceServer(reader, file, server, port, `/${randomBytes(16).toString("hex")}/source`, opts.nearBytes ?? NEAR_BYTES);
    return self;
  }

  /**
   * Why a read FFmpeg was given ended short (the download or a read from storage failed while FFmpeg still wanted
   * the bytes): what FFmpeg made of it cannot be trusted, even if it exited cleanly. Undefined when none did.
   */
  get broken(): Error | undefined {
    return this.#broken;
  }

  /** why the source could not be read (a cut read, or the download failed), if it could not */
  get failure(): Error | undefined {
    return this.#broken ?? this.#failed;
  }

  /** bytes downloaded so far */
  get downloadedBytes(): number {
    return this.#have;
  }

  async close(): Promise<void> {
    this.#abort.abort();
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
    this.#wake();
  }

  #wake(): void {
    // Each waiter checks again and puts itself back if what it waits for has not arrived yet.
    const waiting = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiting) w();
  }

  async #download(file: string): Promise<void> {
    const out = await open(file, "w");
    try {
      const body = await this.#reader.read(0, undefined, this.#abort.signal);
      for await (const chunk of body as AsyncIterable<Uint8Array>) {
        let done = 0;
        while (done < chunk.byteLength) done += (await out.write(chunk, done, chunk.byteLength - done, this.#have + done)).bytesWritten;
        this.#have += chunk.byteLength;
        this.#wake();
      }
      if (this.#have !== this.#reader.size) throw new Error(`the source ended after ${this.#have} of ${this.#reader.size} bytes`);
    } catch (error) {
      this.#failed = this.#abort.signal.aborted ? new Error("the source server was closed") : (error as Error);
      this.#wake();
      throw this.#failed;
    } finally {
      await out.close();
    }
  }

  /** Resolves once more than `pos` bytes are local; rejects if the download failed or the server closed. */
  #waitFor(pos: number): Promise<void> {
    if (this.#have > pos) return Promise.resolve();
    if (this.#failed) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.#have > pos) resolve();
        else if (this.#failed) reject(this.#failed);
        else if (this.#abort.signal.aborted) reject(new Error("the source server was closed"));
        else this.#waiters.add(check);
      };
      check();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const size = this.#reader.size;
    if (req.url !== this.#path) return void res.writeHead(404).end();
    if (req.method !== "GET" && req.method !== "HEAD") return void res.writeHead(405, { allow: "GET, HEAD" }).end();
    const range = parseRange(req.headers.range, size);
    if (range === "invalid") return void res.writeHead(416, { "content-range": `bytes */${size}` }).end();
    const [start, end] = range ?? [0, size - 1];
    const headers = { "accept-ranges": "bytes", "content-type": "application/octet-stream", "content-length": String(Math.max(0, end - start + 1)) };
    if (range) res.writeHead(206, { ...headers, "content-range": `bytes ${start}-${end}/${size}` });
    else res.writeHead(200, headers);
    if (req.method === "HEAD" || end < start) return void res.end();
    let gone = false;
    res.on("close", () => (gone = true));
    try {
      if (start <= this.#have + this.#near) await this.#fromFile(res, start, end, () => gone);
      else await this.#fromStorage(res, start, end, () => gone);
      res.end();
    } catch (error) {
      // FFmpeg closing its connection to seek elsewhere is normal; anything else cut a read it still wanted.
      if (!gone) this.#broken ??= error as Error;
      res.destroy();
    }
  }

  async #fromFile(res: ServerResponse, start: number, end: number, gone: () => boolean): Promise<void> {
    let file: FileHandle | undefined;
    try {
      await this.#waitFor(start);
      file = await open(this.#file, "r");
      let pos = start;
      while (pos <= end && !gone()) {
        await this.#waitFor(pos);
        const want = Math.min(CHUNK, end + 1 - pos, this.#have - pos);
        // A buffer per chunk: the response keeps a written chunk queued until the socket takes it.
        const buffer = Buffer.allocUnsafe(want);
        const { bytesRead } = await file.read(buffer, 0, want, pos);
        if (bytesRead <= 0) throw new Error(`the local copy ended at ${pos}`);
        pos += bytesRead;
        if (!res.write(buffer.subarray(0, bytesRead))) await drained(res);
      }
    } finally {
      await file?.close();
    }
  }

  async #fromStorage(res: ServerResponse, start: number, end: number, gone: () => boolean): Promise<void> {
    const abort = new AbortController();
    res.once("close", () => abort.abort());
    const body = await this.#reader.read(start, end, AbortSignal.any([abort.signal, this.#abort.signal]));
    let sent = 0;
    try {
      for await (const chunk of body as AsyncIterable<Uint8Array>) {
        if (gone()) return;
        sent += chunk.byteLength;
        if (!res.write(chunk)) await drained(res);
      }
    } catch (error) {
      if (gone()) return;
      throw error;
    }
    if (sent !== end - start + 1 && !gone()) throw new Error(`storage sent ${sent} of ${end - start + 1} bytes from ${start}`);
  }

}

/** Resolves when `res` can take more, or is gone (listeners removed either way: this runs for every chunk). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/** `bytes=a-b` / `bytes=a-` / `bytes=-n` within `size`; undefined without a header; "invalid" when unsatisfiable. */
export function parseRange(header: string | undefined, size: number): [number, number] | undefined | "invalid" {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return "invalid";
  if (m[1] === "") {
    const n = Number(m[2]);
    return n > 0 ? [Math.max(0, size - n), size - 1] : "invalid";
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return "invalid";
  return [start, end];
}
