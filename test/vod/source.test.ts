// Where a VOD worker reads an upload from: the bucket over the S3 API (R2 in production; s3rver here), the fs
// driver's folder, or the edge over HTTP (local runs). Each copies the bytes exactly and tells a missing upload
// (SourceMissingError: not worth a retry) from a failure worth retrying.

import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, get as getHttp, type Server } from "node:http";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FsObjectStore, loadStorageConfig, S3ObjectStore } from "../../media-node/src/storage/index.ts";
import { fetchSource, openSource, SourceMissingError, sourceExists } from "../../media-node/src/vod/source.ts";
import { SourceServer } from "../../media-node/src/vod/source-server.ts";
import { type S3Server, startS3 } from "../helpers/s3.ts";

let s3: S3Server;
let work: string;
let http: Server;
let httpUrl: string;
const bytes = randomBytes(3 * 1024 * 1024 + 17);
const MiB = 1024 * 1024;
/** ranges the test server was asked for (the source server's reads straight from storage) */
const ranges: string[] = [];
/** the whole-file answer for `slow` holds after its first MiB until this is called */
let release: () => void = () => undefined;

beforeAll(async () => {
  [s3, work] = await Promise.all([startS3(), mkdtemp(join(tmpdir(), "pulsecast-vod-source-"))]);
  // The edge's internal route, reduced to what the worker relies on: Bearer token, 404 for a missing object.
  http = createServer((req, res) => {
    if (req.headers.authorization !== "Bearer tok") return void res.writeHead(401).end();
    const name = /^\/internal\/media\/uploads\/(v1|slow|cut)\/source$/.exec(req.url ?? "")?.[1];
    if (!name) return void res.writeHead(404).end();
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    if (range) {
      // The edge's ranged answer.
      ranges.push(`${name} ${req.headers.range}`);
      const start = Number(range[1]);
      const end = range[2] ? Number(range[2]) : bytes.length - 1;
      return void res.writeHead(206, { "content-length": String(end - start + 1), "content-range": `bytes ${start}-${end}/${bytes.length}` }).end(bytes.subarray(start, end + 1));
    }
    res.writeHead(200, { "content-length": String(bytes.length) });
    if (req.method === "HEAD" || name === "v1") return void res.end(req.method === "HEAD" ? undefined : bytes);
    // A download that takes its time (`slow`: held after 1 MiB until released) or breaks off (`cut`, after 1 MiB).
    res.write(bytes.subarray(0, MiB));
    if (name === "cut") return void setImmediate(() => res.destroy());
    release = () => res.end(bytes.subarray(MiB));
  });
  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  httpUrl = `http://127.0.0.1:${(http.address() as { port: number }).port}/internal/media`;
});
afterAll(async () => {
  http?.close();
  await s3?.stop();
  await rm(work, { recursive: true, force: true });
});

describe("fetchSource", () => {
  it("from the bucket over the S3 API", async () => {
    const config = loadStorageConfig({ ...s3.env, S3_REQUEST_TIMEOUT_MS: "5000" });
    if (config.store.driver !== "s3") throw new Error("expected the s3 driver");
    const { driver: _d, ...options } = config.store;
    const store = new S3ObjectStore(options);
    await store.put("uploads/v1/source", bytes);
    const file = join(work, "s3-copy");
    expect(await fetchSource(store, "uploads/v1/source", file)).toBe(bytes.length);
    expect((await readFile(file)).equals(bytes)).toBe(true);
    await expect(fetchSource(store, "uploads/nope/source", join(work, "x"))).rejects.toBeInstanceOf(SourceMissingError);
    // By ranges, as FFmpeg reads an MP4's index at its end before its start.
    const reader = await openSource(store, "uploads/v1/source");
    expect(reader.size).toBe(bytes.length);
    const chunks: Buffer[] = [];
    for await (const c of await reader.read(bytes.length - 100)) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(bytes.subarray(-100))).toBe(true);
    expect(await sourceExists(store, "uploads/v1/source")).toBe(true);
    expect(await sourceExists(store, "uploads/nope/source")).toBe(false);
    await store.close();
  });

  it("from the fs driver's folder", async () => {
    const store = new FsObjectStore({ dir: join(work, "store"), publicBaseUrl: "http://127.0.0.1:1/media" });
    await writeFile(join(work, "src"), bytes);
    await store.put("uploads/v1/source", { file: join(work, "src") });
    const file = join(work, "fs-copy");
    expect(await fetchSource(store, "uploads/v1/source", file)).toBe(bytes.length);
    expect((await readFile(file)).equals(bytes)).toBe(true);
    await expect(fetchSource(store, "uploads/nope/source", join(work, "y"))).rejects.toBeInstanceOf(SourceMissingError);
  });

  it("from the edge over HTTP with its token; a missing upload, or a refused token, are told apart", async () => {
    const store = new FsObjectStore({ dir: join(work, "unused"), publicBaseUrl: "http://127.0.0.1:1/media" });
    const file = join(work, "http-copy");
    expect(await fetchSource(store, "uploads/v1/source", file, { kind: "http", baseUrl: httpUrl, token: "tok" })).toBe(bytes.length);
    expect((await readFile(file)).equals(bytes)).toBe(true);
    await expect(fetchSource(store, "uploads/v2/source", join(work, "z"), { kind: "http", baseUrl: httpUrl, token: "tok" })).rejects.toBeInstanceOf(SourceMissingError);
    const refused = await fetchSource(store, "uploads/v1/source", join(work, "w"), { kind: "http", baseUrl: httpUrl, token: "wrong" }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Error);
    expect(refused).not.toBeInstanceOf(SourceMissingError);
    expect((refused as Error).message).toMatch(/401/);
  });
});

describe("SourceServer: FFmpeg's view of a source that is still downloading", () => {
  const store = new FsObjectStore({ dir: "/nonexistent", publicBaseUrl: "http://127.0.0.1:1/media" });
  const at = () => ({ kind: "http" as const, baseUrl: httpUrl, token: "tok" });

  it("serves what has arrived at once, a range far ahead straight from storage, and the rest as it arrives", async () => {
    const reader = await openSource(store, "uploads/slow/source", at());
    expect(reader.size).toBe(bytes.length);
    const server = await SourceServer.start(reader, join(work, "slow-copy"), { nearBytes: 1.5 * MiB });
    try {
      // The first MiB is here, the rest held back: a read of the start is answered now.
      const head = await fetch(server.url, { headers: { range: "bytes=0-99" } });
      expect(head.status).toBe(206);
      expect(Buffer.from(await head.arrayBuffer()).equals(bytes.subarray(0, 100))).toBe(true);
      expect(server.downloadedBytes).toBeLessThan(bytes.length);
      // The end of the file (where an MP4 may keep its index) is far ahead of the download: read from storage.
      const tail = await fetch(server.url, { headers: { range: `bytes=${bytes.length - 1000}-` } });
      expect(tail.headers.get("content-range")).toBe(`bytes ${bytes.length - 1000}-${bytes.length - 1}/${bytes.length}`);
      expect(Buffer.from(await tail.arrayBuffer()).equals(bytes.subarray(-1000))).toBe(true);
      expect(ranges).toContain(`slow bytes=${bytes.length - 1000}-${bytes.length - 1}`);
      // Reads within reach of the download wait for it rather than asking storage. First the end of the first MiB:
      // once it is read, that MiB is local however slowly this machine moved it, so the next read is in reach too.
      const asked = ranges.length;
      const firstMiB = await fetch(server.url, { headers: { range: `bytes=${MiB - 10}-${MiB - 1}` } });
      expect(Buffer.from(await firstMiB.arrayBuffer()).equals(bytes.subarray(MiB - 10, MiB))).toBe(true);
      // Then a read a little ahead of what has arrived: it waits over many arriving chunks.
      const next = fetch(server.url, { headers: { range: `bytes=${2 * MiB + 10}-${2 * MiB + 19}` } }).then(async (r) => Buffer.from(await r.arrayBuffer()));
      const whole = fetch(server.url).then(async (r) => Buffer.from(await r.arrayBuffer()));
      release();
      expect((await next).equals(bytes.subarray(2 * MiB + 10, 2 * MiB + 20))).toBe(true);
      expect((await whole).equals(bytes)).toBe(true);
      expect(ranges.length).toBe(asked);
      await server.downloaded;
      expect((await readFile(join(work, "slow-copy"))).equals(bytes)).toBe(true);
      // A reader slower than the server (FFmpeg while it encodes): what it gets is still the file, byte for byte.
      const slow = await new Promise<Buffer>((resolve, reject) => {
        getHttp(server.url, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => {
            chunks.push(c);
            res.pause();
            setTimeout(() => res.resume(), 1);
          });
          res.on("end", () => resolve(Buffer.concat(chunks)));
          res.on("error", reject);
        }).on("error", reject);
      });
      expect(slow.equals(bytes)).toBe(true);
      expect(server.failure).toBeUndefined();
      expect((await fetch(server.url.replace(/\/source$/, "/other"))).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it("a download that breaks off cuts the reads waiting on it and says so (FFmpeg may take a cut for the end)", async () => {
    const server = await SourceServer.start(await openSource(store, "uploads/cut/source", at()), join(work, "cut-copy"), { nearBytes: 256 * 1024 });
    try {
      const read = await fetch(server.url);
      await expect(read.arrayBuffer()).rejects.toThrow();
      await expect(server.downloaded).rejects.toThrow(/ended after|terminated|closed|socket/i);
      expect(server.failure).toBeInstanceOf(Error);
    } finally {
      await server.close();
    }
  });

  it("tells a deleted source from one still there, and a missing one at opening", async () => {
    expect(await sourceExists(store, "uploads/v1/source", at())).toBe(true);
    expect(await sourceExists(store, "uploads/v9/source", at())).toBe(false);
    await expect(openSource(store, "uploads/v9/source", at())).rejects.toBeInstanceOf(SourceMissingError);
    await expect(sourceExists(store, "uploads/v1/source", { ...at(), token: "wrong" })).rejects.toThrow(/401/);
  });
});
