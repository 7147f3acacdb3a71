// Where a VOD worker reads an upload from: the bucket over the S3 API (R2 in production; s3rver here), the fs
// driver's folder, or the edge over HTTP (local runs). Each copies the bytes exactly and tells a missing upload
// (SourceMissingError: not worth a retry) from a failure worth retrying.

import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FsObjectStore, loadStorageConfig, S3ObjectStore } from "../../media-node/src/storage/index.ts";
import { fetchSource, SourceMissingError } from "../../media-node/src/vod/source.ts";
import { type S3Server, startS3 } from "../helpers/s3.ts";

let s3: S3Server;
let work: string;
let http: Server;
let httpUrl: string;
const bytes = randomBytes(3 * 1024 * 1024 + 17);

beforeAll(async () => {
  [s3, work] = await Promise.all([startS3(), mkdtemp(join(tmpdir(), "pulsecast-vod-source-"))]);
  // The edge's internal route, reduced to what the worker relies on: Bearer token, 404 for a missing object.
  http = createServer((req, res) => {
    if (req.headers.authorization !== "Bearer tok") return void res.writeHead(401).end();
    if (req.url !== "/internal/media/uploads/v1/source") return void res.writeHead(404).end();
    res.writeHead(200, { "content-length": String(bytes.length) }).end(bytes);
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
