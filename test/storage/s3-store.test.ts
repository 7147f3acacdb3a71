// The s3 driver against a real S3-protocol server (s3rver) on 127.0.0.1: bodies byte-exact (the aws-chunked
// checksum trap), metadata kept, listing across pages, errors clear — and the ReliableUploader riding out a
// storage outage in the middle of a live-like sequence of segment uploads.
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadStorageConfig } from "../../media-node/src/storage/config.ts";
import { CACHE_CONTROL } from "../../media-node/src/storage/content-types.ts";
import { createObjectStore } from "../../media-node/src/storage/create-store.ts";
import { StorageError, StorageKeyError } from "../../media-node/src/storage/errors.ts";
import { S3ObjectStore } from "../../media-node/src/storage/s3-store.ts";
import { ReliableUploader } from "../../media-node/src/storage/uploader.ts";
import { type S3Server, startS3 } from "../helpers/s3.ts";

let s3: S3Server;
let store: S3ObjectStore;
let work: string;

function storeFor(server: S3Server, extra: Partial<ConstructorParameters<typeof S3ObjectStore>[0]> = {}): S3ObjectStore {
  const config = loadStorageConfig({ ...server.env, S3_REQUEST_TIMEOUT_MS: "5000" });
  if (config.store.driver !== "s3") throw new Error("expected the s3 driver");
  const { driver: _d, ...options } = config.store;
  return new S3ObjectStore({ ...options, ...extra });
}

beforeAll(async () => {
  [s3, work] = await Promise.all([startS3(), mkdtemp(join(tmpdir(), "pulsecast-s3-work-"))]);
  store = storeFor(s3);
});

afterAll(async () => {
  await store?.close();
  await s3?.stop();
  await rm(work, { recursive: true, force: true });
});

describe("s3 driver on s3rver", () => {
  it("is what the env config builds", async () => {
    const built = createObjectStore(loadStorageConfig(s3.env).store);
    expect(built.kind).toBe("s3");
    await expect(built.ping()).resolves.toBeUndefined();
    await built.close();
  });

  it("stores bodies byte-exact from bytes, a streamed file, a string and a stream (no aws-chunked framing)", async () => {
    const segment = randomBytes(1_500_000);
    const local = join(work, "seg.m4s");
    await writeFile(local, segment);
    await store.put("live/s1/720p/seg_1.m4s", { file: local }, { cacheControl: CACHE_CONTROL.immutable });
    const init = randomBytes(1_234);
    await store.put("live/s1/720p/init.mp4", init, { cacheControl: CACHE_CONTROL.immutable });
    await store.put("live/s1/720p.m3u8", "#EXTM3U\n#EXT-X-VERSION:7\n", { cacheControl: CACHE_CONTROL.livePlaylist });
    await store.put("live/s1/notes.txt", Readable.from([Buffer.from("hello "), Buffer.from("stream")]));

    const seg = await store.get("live/s1/720p/seg_1.m4s");
    expect(seg!.size).toBe(segment.length);
    expect(Buffer.from(seg!.body).equals(segment)).toBe(true);
    expect(Buffer.from((await store.get("live/s1/720p/init.mp4"))!.body).equals(init)).toBe(true);
    expect(new TextDecoder().decode((await store.get("live/s1/720p.m3u8"))!.body)).toBe("#EXTM3U\n#EXT-X-VERSION:7\n");
    expect(new TextDecoder().decode((await store.get("live/s1/notes.txt"))!.body)).toBe("hello stream");
    // And on s3rver's own disk, not just through our reader. With the SDK's default checksum mode this file
    // is 70 bytes longer: aws-chunked framing plus an `x-amz-checksum-crc32` trailer stored inside the object.
    const onDisk = await readFile(join(s3.dir, s3.bucket, "live/s1/720p/seg_1.m4s._S3rver_object"));
    expect(onDisk.length).toBe(segment.length);
    expect(onDisk.includes(Buffer.from("x-amz-checksum"))).toBe(false);
    expect(onDisk.equals(segment)).toBe(true);
  });

  it("keeps content type and Cache-Control (head and get)", async () => {
    expect(await store.head("live/s1/720p/seg_1.m4s")).toMatchObject({ size: 1_500_000, contentType: "video/iso.segment", cacheControl: CACHE_CONTROL.immutable });
    expect(await store.get("live/s1/720p.m3u8")).toMatchObject({ contentType: "application/vnd.apple.mpegurl", cacheControl: "public, max-age=1" });
    expect((await store.head("live/s1/720p/init.mp4"))?.contentType).toBe("video/mp4");
  });

  it("serves the object at its public (playback) URL", async () => {
    const url = store.publicUrl("live/s1/720p.m3u8");
    expect(url).toBe(`${s3.endpoint}/${s3.bucket}/live/s1/720p.m3u8`);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/vnd.apple.mpegurl");
    expect(res.headers.get("cache-control")).toBe("public, max-age=1");
  });

  it("lists across pages, sorted", async () => {
    const paged = storeFor(s3, { listPageSize: 2 });
    for (const i of [3, 1, 2, 5, 4]) await paged.put(`list/p/seg_${i}.m4s`, "x");
    expect(await paged.list("list/p/")).toEqual([1, 2, 3, 4, 5].map((i) => `list/p/seg_${i}.m4s`));
    expect(await paged.list("list/none/")).toEqual([]);
    await expect(paged.list("../")).rejects.toThrow(StorageKeyError);
    await paged.close();
  });

  it("returns null for missing objects and deletes idempotently", async () => {
    expect(await store.get("live/s1/none.m4s")).toBeNull();
    expect(await store.head("live/s1/none.m4s")).toBeNull();
    await store.put("live/s1/del.ts", "x");
    await store.delete("live/s1/del.ts");
    await store.delete("live/s1/del.ts");
    expect(await store.head("live/s1/del.ts")).toBeNull();
  });

  it("refuses bad keys before sending anything", async () => {
    for (const key of ["../x.ts", "/abs.ts", "a//b.ts", "a/\u0007.ts"]) await expect(store.put(key, "x")).rejects.toThrow(StorageKeyError);
  });

  it("ping names the problem: a missing bucket, a server that is down", async () => {
    const wrongBucket = storeFor(s3, { bucket: "no-such-bucket" });
    await expect(wrongBucket.ping()).rejects.toThrow(/s3 ping bucket no-such-bucket failed: .*404/);
    await wrongBucket.close();
    const { freePort } = await import("../helpers/ports.ts");
    const nowhere = new S3ObjectStore({ ...storeFor(s3), endpoint: `http://127.0.0.1:${await freePort()}`, region: "us-east-1", bucket: "b", credentials: s3.credentials, forcePathStyle: true, publicBaseUrl: "http://x", requestTimeoutMs: 2000, maxAttempts: 1 });
    const error = await nowhere.ping().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
    await nowhere.close();
  });
});

describe("ReliableUploader over s3 with an outage in the middle", () => {
  it("keeps uploading while storage is down (files wait on disk), and everything arrives byte-exact once it is back", async () => {
    const outage = await startS3();
    const outageStore = storeFor(outage);
    const uploader = new ReliableUploader(outageStore, { retryBaseMs: 50, retryMaxMs: 500, attemptTimeoutMs: 10_000 });
    const states: boolean[] = [];
    uploader.on("storage", (e) => states.push(e.up));
    const uploads: Promise<void>[] = [];
    try {
      const segments: { key: string; path: string; data: Buffer }[] = [];
      let stored = 0;
      // One live-like step: a finished segment, then a playlist listing everything stored so far, uploaded only
      // after the segment is stored. Segments finish out of order after the outage (in parallel), so the
      // playlist names a count, as a real one lists every stored segment.
      const produce = async (i: number) => {
        const data = randomBytes(150_000 + i);
        const path = join(work, `out-${i}.m4s`);
        await writeFile(path, data);
        const key = `live/outage/720p/seg_${String(i).padStart(5, "0")}.m4s`;
        segments.push({ key, path, data });
        const seg = uploader.upload(key, path, { cacheControl: CACHE_CONTROL.immutable });
        const playlist = seg.then(() => uploader.uploadBody("live/outage/720p.m3u8", `#EXTM3U\n#stored:${++stored}\n`, { cacheControl: CACHE_CONTROL.livePlaylist, replaceQueued: true }));
        uploads.push(seg, playlist);
      };

      for (let i = 0; i < 4; i++) await produce(i); // storage up: stored as they come
      expect(await uploader.drain(30_000)).toBe(true);

      // Storage goes away mid-stream.
      const wentDown = once(uploader, "storage");
      await outage.halt();
      for (let i = 4; i < 12; i++) await produce(i); // handed over, not awaited: they cannot be stored now
      expect((await wentDown)[0].up).toBe(false);
      let failures = 0;
      await new Promise<void>((resolve) => {
        const onFailed = () => ++failures >= 3 && (uploader.off("failed", onFailed), resolve());
        uploader.on("failed", onFailed);
      });
      // Nothing is lost: the 8 new segments wait on local disk, counted in the spool.
      for (const s of segments.slice(4)) expect(existsSync(s.path), s.path).toBe(true);
      expect(uploader.stats().pending).toBeGreaterThanOrEqual(8);
      expect(uploader.stats().pendingBytes).toBeGreaterThanOrEqual(8 * 150_000);

      // Storage comes back on the same port and data.
      const cameBack = once(uploader, "storage");
      await outage.start();
      expect((await cameBack)[0].up).toBe(true);
      await Promise.all(uploads);
      expect(await uploader.drain(30_000)).toBe(true);

      for (const s of segments) {
        const got = await outageStore.get(s.key);
        expect(got, s.key).not.toBeNull();
        expect(Buffer.from(got!.body).equals(s.data), s.key).toBe(true);
        expect(got!.cacheControl).toBe(CACHE_CONTROL.immutable);
        expect(existsSync(s.path), s.path).toBe(false);
      }
      expect(await outageStore.list("live/outage/720p/")).toHaveLength(12);
      expect(new TextDecoder().decode((await outageStore.get("live/outage/720p.m3u8"))!.body)).toBe("#EXTM3U\n#stored:12\n");
      expect(states).toEqual([false, true]);
      expect(uploader.stats()).toMatchObject({ pending: 0, pendingBytes: 0, storageUp: true });
    } finally {
      for (const u of uploads) u.catch(() => {}); // on an assertion failure above, close() rejects what is left
      await uploader.close();
      await outageStore.close();
      await outage.stop();
    }
  });
});
