// ReliableUploader against the real fs driver, with storage faults injected by a thin wrapper (the outage over
// a real S3 server is in test/storage/). Every wait is on an event or a promise, never a sleep.
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isStorageWide, LocalFileError, SpoolFullError, StorageError, StorageKeyError, UploaderClosedError } from "./errors.ts";
import { FsObjectStore } from "./fs-store.ts";
import type { ObjectStore, PutBody, PutOptions } from "./types.ts";
import { ReliableUploader } from "./uploader.ts";

/** The real fs store, plus switches a test flips: storage down, a put that hangs, a hook on every put. */
class FaultyStore extends FsObjectStore {
  down = false;
  hangNext = 0;
  puts: string[] = [];
  concurrent = 0;
  maxConcurrentWhileDown = 0;
  onPut: ((key: string) => Promise<void> | void) | undefined;

  override async put(key: string, body: PutBody, options?: PutOptions): Promise<void> {
    this.puts.push(key);
    this.concurrent++;
    try {
      if (this.down) this.maxConcurrentWhileDown = Math.max(this.maxConcurrentWhileDown, this.concurrent);
      await this.onPut?.(key);
      if (this.hangNext > 0) {
        this.hangNext--;
        await new Promise(() => {}); // never answers: only the uploader's attempt timeout ends this
      }
      if (this.down) throw new StorageError("connect ECONNREFUSED 127.0.0.1:9 (injected)", "ECONNREFUSED");
      await super.put(key, body, options);
    } finally {
      this.concurrent--;
    }
  }
}

let dir: string;
let n = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pulsecast-uploader-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function fresh(config: ConstructorParameters<typeof ReliableUploader>[1] = {}) {
  const root = join(dir, `store-${++n}`);
  const store = new FaultyStore({ dir: root, publicBaseUrl: "http://x/media" });
  const uploader = new ReliableUploader(store, { retryBaseMs: 10, retryMaxMs: 80, ...config });
  return { store, uploader };
}

async function localFile(bytes: number | Buffer): Promise<{ path: string; data: Buffer }> {
  const data = typeof bytes === "number" ? randomBytes(bytes) : bytes;
  const path = join(dir, `local-${++n}.m4s`);
  await writeFile(path, data);
  return { path, data };
}

describe("ReliableUploader", () => {
  it("stores a file byte-exact with its metadata, deletes the local copy, and reports it", async () => {
    const { store, uploader } = fresh();
    const { path, data } = await localFile(100_000);
    const uploaded = once(uploader, "uploaded");
    await uploader.upload("live/s/720p/seg_1.m4s", path, { cacheControl: "public, max-age=31536000, immutable" });
    const got = await store.get("live/s/720p/seg_1.m4s");
    expect(Buffer.from(got!.body).equals(data)).toBe(true);
    expect(got!.cacheControl).toBe("public, max-age=31536000, immutable");
    expect(existsSync(path)).toBe(false);
    const [event] = await uploaded;
    expect(event).toMatchObject({ key: "live/s/720p/seg_1.m4s", bytes: 100_000, attempts: 1 });
    expect(event.latencyMs).toBeGreaterThanOrEqual(event.attemptMs);
    expect(uploader.stats()).toMatchObject({ pending: 0, pendingBytes: 0, uploaded: 1, bytesOut: 100_000, storageUp: true });
  });

  it("keeps the local file when asked", async () => {
    const { uploader } = fresh();
    const { path } = await localFile(10);
    await uploader.upload("live/s/keep.m4s", path, { keepLocal: true });
    expect(existsSync(path)).toBe(true);
    const second = fresh({ keepLocal: true });
    await second.uploader.upload("live/s/keep2.m4s", path);
    expect(existsSync(path)).toBe(true);
  });

  it("rides out an outage: files wait on disk, one probe at a time, all arrive byte-exact when storage returns", async () => {
    const { store, uploader } = fresh({ concurrency: 4 });
    store.down = true;
    const wentDown = once(uploader, "storage");
    const files = await Promise.all([1, 2, 3, 4, 5, 6].map(() => localFile(50_000)));
    const uploads = files.map((f, i) => uploader.upload(`live/s/seg_${i}.m4s`, f.path));
    const [down] = await wentDown;
    expect(down.up).toBe(false);
    // Several failed attempts later, everything is still waiting on local disk.
    let failures = 0;
    await new Promise<void>((resolve) => {
      const onFailed = () => ++failures >= 8 && (uploader.off("failed", onFailed), resolve());
      uploader.on("failed", onFailed);
    });
    for (const f of files) expect(existsSync(f.path)).toBe(true);
    expect(uploader.stats()).toMatchObject({ pending: 6, pendingBytes: 300_000, storageUp: false });
    expect(store.maxConcurrentWhileDown).toBe(1);

    const cameBack = once(uploader, "storage");
    store.down = false;
    await Promise.all(uploads);
    expect((await cameBack)[0].up).toBe(true);
    for (const [i, f] of files.entries()) {
      expect(Buffer.from((await store.get(`live/s/seg_${i}.m4s`))!.body).equals(f.data)).toBe(true);
      expect(existsSync(f.path)).toBe(false);
    }
    expect(uploader.stats()).toMatchObject({ pending: 0, pendingBytes: 0, uploaded: 6, storageUp: true });
    expect(uploader.stats().failures).toBeGreaterThanOrEqual(8);
  });

  it("stores one key in call order, even when the first version is slow", async () => {
    const { store, uploader } = fresh({ concurrency: 4 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let first = true;
    store.onPut = async (key) => {
      if (key === "live/s/index.m3u8" && first) {
        first = false;
        await gate;
      }
    };
    const v = [1, 2, 3].map((i) => uploader.uploadBody("live/s/index.m3u8", `#EXTM3U\n#v${i}\n`));
    const other = uploader.uploadBody("live/s/other.m3u8", "other");
    await other; // a different key is not held up by the slow one
    expect(store.puts.filter((k) => k === "live/s/index.m3u8")).toHaveLength(1);
    release();
    await Promise.all(v);
    expect(store.puts.filter((k) => k === "live/s/index.m3u8")).toHaveLength(3);
    expect(new TextDecoder().decode((await store.get("live/s/index.m3u8"))!.body)).toBe("#EXTM3U\n#v3\n");
  });

  it("replaceQueued keeps one waiting version of a playlist during an outage and settles every caller", async () => {
    const { store, uploader } = fresh();
    store.down = true;
    const wentDown = once(uploader, "storage");
    const versions = [1, 2, 3, 4, 5].map((i) => uploader.uploadBody("live/s/720p.m3u8", `v${i}`, { replaceQueued: true }));
    await wentDown;
    expect(uploader.stats().pending).toBeLessThanOrEqual(2); // at most the one in flight + the newest
    store.down = false;
    await Promise.all(versions);
    expect(new TextDecoder().decode((await store.get("live/s/720p.m3u8"))!.body)).toBe("v5");
    expect(uploader.stats()).toMatchObject({ pending: 0, pendingBytes: 0 });
  });

  it("refuses new work when the spool is full, keeping the refused file and everything queued", async () => {
    const { store, uploader } = fresh({ spoolMaxBytes: 1_000 });
    store.down = true;
    const a = await localFile(600);
    const b = await localFile(600);
    const first = uploader.upload("live/s/a.m4s", a.path);
    const rejected = once(uploader, "rejected");
    await expect(uploader.upload("live/s/b.m4s", b.path)).rejects.toThrow(SpoolFullError);
    await expect(uploader.upload("live/s/b.m4s", b.path)).rejects.toThrow(/spool full: live\/s\/b\.m4s \(600 B\) refused, 600 B of 1000 B already waiting/);
    expect((await rejected)[0].error).toBeInstanceOf(SpoolFullError);
    expect(existsSync(b.path)).toBe(true);
    store.down = false;
    await first;
    expect(Buffer.from((await store.get("live/s/a.m4s"))!.body).equals(a.data)).toBe(true);
    await uploader.upload("live/s/b.m4s", b.path); // room again
    expect(Buffer.from((await store.get("live/s/b.m4s"))!.body).equals(b.data)).toBe(true);
  });

  it("rejects at once what retrying cannot fix: bad keys and missing files", async () => {
    const { store, uploader } = fresh();
    const { path } = await localFile(10);
    await expect(uploader.upload("../escape.m4s", path)).rejects.toThrow(StorageKeyError);
    await expect(uploader.uploadBody("/abs.m3u8", "x")).rejects.toThrow(StorageKeyError);
    await expect(uploader.upload("live/s/x.m4s", join(dir, "missing.m4s"))).rejects.toThrow(LocalFileError);
    expect(existsSync(path)).toBe(true);
    expect(store.puts).toEqual([]);
    expect(uploader.stats().pending).toBe(0);
  });

  it("a local file that vanishes while waiting fails its upload with LocalFileError instead of retrying forever", async () => {
    const { store, uploader } = fresh();
    store.down = true;
    const { path } = await localFile(10);
    const pending = uploader.upload("live/s/vanish.m4s", path);
    await once(uploader, "failed");
    await rm(path);
    store.down = false;
    await expect(pending).rejects.toThrow(LocalFileError);
    expect(uploader.stats().pending).toBe(0);
  });

  it("gives up after UPLOAD_MAX_ATTEMPTS when set, keeping the local file", async () => {
    const { store, uploader } = fresh({ maxAttempts: 3 });
    store.down = true;
    const { path } = await localFile(10);
    await expect(uploader.upload("live/s/give-up.m4s", path)).rejects.toThrow(/giving up on live\/s\/give-up\.m4s after 3 attempts/);
    expect(store.puts).toHaveLength(3);
    expect(existsSync(path)).toBe(true);
  });

  it("backs off exponentially with jitter, capped (deterministic with random = 0)", async () => {
    const root = join(dir, `store-${++n}`);
    const store = new FaultyStore({ dir: root, publicBaseUrl: "http://x" });
    const uploader = new ReliableUploader(store, { retryBaseMs: 10, retryMaxMs: 80, maxAttempts: 7 }, { random: () => 0 });
    store.down = true;
    const delays: number[] = [];
    uploader.on("failed", (e) => delays.push(e.retryInMs));
    await expect(uploader.uploadBody("live/s/b.m3u8", "x")).rejects.toThrow(/giving up/);
    // equal jitter with random=0 gives the floor: half of min(max, base·2^(n-1))
    expect(delays.slice(0, 6).map((d) => Math.round(d))).toEqual([5, 10, 20, 40, 40, 40]);
    expect(delays[6]).toBe(-1); // the final failure schedules nothing
  });

  it("an attempt that hangs is timed out and retried", async () => {
    const { store, uploader } = fresh({ attemptTimeoutMs: 1_000 }); // roomy: a loaded machine must not time out the healthy retry
    store.hangNext = 1;
    const failed = once(uploader, "failed");
    await uploader.uploadBody("live/s/hang.m3u8", "ok");
    expect((await failed)[0].error.message).toMatch(/timed out after 1000 ms/);
    expect(store.puts).toHaveLength(2);
  });

  it("drain() reports whether everything was stored in time; close() rejects the rest and keeps their files", async () => {
    const { store, uploader } = fresh();
    expect(await uploader.drain()).toBe(true);
    store.down = true;
    const { path } = await localFile(10);
    const pending = uploader.upload("live/s/late.m4s", path);
    await once(uploader, "failed");
    expect(await uploader.drain(50)).toBe(false);
    const drained = uploader.drain();
    await uploader.close();
    await expect(pending).rejects.toThrow(UploaderClosedError);
    await expect(pending).rejects.toThrow(/local file kept at/);
    expect(await drained).toBe(false); // ended by close(), not by storing
    expect(existsSync(path)).toBe(true);
    await expect(uploader.uploadBody("live/s/after.m3u8", "x")).rejects.toThrow(UploaderClosedError);
  });

  it("ping() is storage's ping", async () => {
    const { uploader } = fresh();
    await expect(uploader.ping()).resolves.toBeUndefined();
    const broken: ObjectStore = Object.assign(Object.create(FsObjectStore.prototype) as FsObjectStore, {
      ping: () => Promise.reject(new StorageError("no route to storage")),
    });
    await expect(new ReliableUploader(broken).ping()).rejects.toThrow(/no route to storage/);
  });

  it("copies an in-memory body, so the caller may reuse its buffer", async () => {
    const { store, uploader } = fresh();
    const buf = new Uint8Array([1, 2, 3]);
    const done = uploader.uploadBody("live/s/buf.bin", buf);
    buf.fill(9);
    await done;
    expect([...(await store.get("live/s/buf.bin"))!.body]).toEqual([1, 2, 3]);
    expect(await readFile(join(store.root, "live/s/buf.bin"))).toEqual(Buffer.from([1, 2, 3]));
  });
});

describe("ReliableUploader: an object-specific failure", () => {
  it("backs off only that object (a 4xx answer) while others keep going at full speed", async () => {
    const { store, uploader } = fresh({ retryBaseMs: 20, retryMaxMs: 40, maxAttempts: 4 });
    const onPut = store.onPut;
    store.onPut = (key) => {
      if (key === "live/s/bad.m4s") throw new StorageError("s3 put live/s/bad.m4s failed: EntityTooLarge (HTTP 400)", "EntityTooLarge", { status: 400 });
      return onPut?.(key);
    };
    const states: boolean[] = [];
    uploader.on("storage", (e) => states.push(e.up));
    const bad = uploader.uploadBody("live/s/bad.m4s", "x");
    const good = [1, 2, 3, 4, 5].map((i) => uploader.uploadBody(`live/s/good_${i}.m4s`, `g${i}`));
    await Promise.all(good);
    await expect(bad).rejects.toThrow(/giving up on live\/s\/bad\.m4s after 4 attempts.*EntityTooLarge/);
    expect(states).toEqual([]); // storage was never considered down
    expect(uploader.stats().storageUp).toBe(true);
  });
});

describe("isStorageWide", () => {
  it("treats no answer, timeouts, 5xx, 408 and 429 as storage down; other 4xx as about the object", () => {
    expect(isStorageWide(new StorageError("ECONNREFUSED", "ECONNREFUSED"))).toBe(true);
    expect(isStorageWide(new Error("socket hang up"))).toBe(true);
    for (const status of [500, 503, 408, 429]) expect(isStorageWide(new StorageError("x", "X", { status }))).toBe(true);
    for (const status of [400, 403, 404, 413]) expect(isStorageWide(new StorageError("x", "X", { status }))).toBe(false);
  });
});

describe("ReliableUploader journal (UPLOAD_JOURNAL_DIR)", () => {
  it("writes each accepted upload down and crosses it off once stored", async () => {
    const journalDir = join(dir, `journal-${++n}`);
    const { store, uploader } = fresh({ journalDir });
    const { path, data } = await localFile(1000);
    await uploader.upload("live/j/seg_1.m4s", path);
    await uploader.uploadBody("live/j/index.m3u8", "#EXTM3U\n");
    expect(Buffer.from((await store.get("live/j/seg_1.m4s"))!.body).equals(data)).toBe(true);
    expect((await readdir(journalDir)).filter((name) => !name.startsWith("."))).toEqual([]);
  });

  it("after a restart during an outage, recover() re-queues what was waiting, in order, and drops what is gone", async () => {
    const journalDir = join(dir, `journal-${++n}`);
    const root = join(dir, `store-${++n}`);
    const first = new FaultyStore({ dir: root, publicBaseUrl: "http://x" });
    first.down = true;
    const before = new ReliableUploader(first, { retryBaseMs: 10, retryMaxMs: 40, journalDir });
    const a = await localFile(20_000);
    const b = await localFile(30_000);
    const gone = await localFile(10);
    const pending = [
      before.upload("live/j/seg_1.m4s", a.path, { cacheControl: "public, max-age=31536000, immutable" }),
      before.upload("live/j/seg_2.m4s", b.path),
      before.upload("live/j/seg_3.m4s", gone.path),
      before.uploadBody("live/j/index.m3u8", "#EXTM3U\n#v1\n", { cacheControl: "public, max-age=1" }),
      before.uploadBody("live/j/index.m3u8", "#EXTM3U\n#v2\n", { cacheControl: "public, max-age=1" }),
      before.uploadBody("live/j/bytes.bin", new Uint8Array([0, 255, 7])),
    ];
    for (const p of pending) p.catch(() => {}); // the "crash" below rejects them
    await once(before, "storage");
    await before.close(); // the process goes away with everything still waiting
    await rm(gone.path); // and one local file did not survive
    await writeFile(join(journalDir, "000000000000001-garbage-000000001.json"), "{not json");

    const second = new FaultyStore({ dir: root, publicBaseUrl: "http://x" });
    const after = new ReliableUploader(second, { retryBaseMs: 10, retryMaxMs: 40, journalDir });
    const rejected: string[] = [];
    after.on("rejected", (e) => rejected.push(e.error.message));
    expect(await after.recover()).toEqual({ recovered: 5, dropped: 2 });
    expect(await after.drain(30_000)).toBe(true);

    expect(Buffer.from((await second.get("live/j/seg_1.m4s"))!.body).equals(a.data)).toBe(true);
    expect((await second.head("live/j/seg_1.m4s"))?.cacheControl).toBe("public, max-age=31536000, immutable");
    expect(Buffer.from((await second.get("live/j/seg_2.m4s"))!.body).equals(b.data)).toBe(true);
    expect(await second.head("live/j/seg_3.m4s")).toBeNull();
    expect(new TextDecoder().decode((await second.get("live/j/index.m3u8"))!.body)).toBe("#EXTM3U\n#v2\n");
    expect(second.puts.filter((k) => k === "live/j/index.m3u8")).toHaveLength(2); // v1 then v2, in order
    expect([...(await second.get("live/j/bytes.bin"))!.body]).toEqual([0, 255, 7]);
    expect(existsSync(a.path) || existsSync(b.path)).toBe(false);
    expect(rejected.some((m) => m.includes(gone.path))).toBe(true);
    expect(rejected.some((m) => m.includes("unreadable upload journal entry"))).toBe(true);
    expect((await readdir(journalDir)).filter((name) => !name.startsWith("."))).toEqual([]);
  });

  it("without a journal folder, recover() has nothing to do", async () => {
    const { uploader } = fresh();
    expect(await uploader.recover()).toEqual({ recovered: 0, dropped: 0 });
  });
});
