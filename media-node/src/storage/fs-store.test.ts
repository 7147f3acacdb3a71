// The fs driver and its /media/ HTTP handler, for real: files in a temp folder, a node:http server on
// 127.0.0.1 and a free port, requests over the loopback.
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { createServer, request, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CACHE_CONTROL } from "./content-types.ts";
import { LocalFileError, StorageKeyError } from "./errors.ts";
import { FsObjectStore } from "./fs-store.ts";
import { createMediaHandler } from "./http-handler.ts";

let dir: string;
let store: FsObjectStore;
let server: Server;
let base: string;
let port: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pulsecast-fs-store-"));
  const handler = createMediaHandler(new FsObjectStore({ dir: join(dir, "root"), publicBaseUrl: "http://unused" }));
  store = new FsObjectStore({ dir: join(dir, "root"), publicBaseUrl: "http://127.0.0.1:8000/media/" });
  server = createServer((req, res) => {
    void handler(req, res).then((handled) => {
      if (!handled) {
        res.statusCode = 418;
        res.end("not media");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as { port: number }).port;
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

/** A raw request: node:http sends the path exactly as given (fetch would normalise `..` away before sending). */
function rawGet(path: string, headers: Record<string, string> = {}, method = "GET"): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("fs driver", () => {
  it("stores strings, bytes, files and streams byte-exact, with content type and Cache-Control", async () => {
    const segment = randomBytes(300_000);
    const local = join(dir, "seg.m4s");
    await writeFile(local, segment);
    await store.put("live/a/720p/seg_1.m4s", { file: local }, { cacheControl: CACHE_CONTROL.immutable });
    await store.put("live/a/720p.m3u8", "#EXTM3U\n", { cacheControl: CACHE_CONTROL.livePlaylist });
    await store.put("live/a/init.mp4", new Uint8Array([1, 2, 3]), { contentType: "video/mp4; custom" });
    await store.put("live/a/notes.txt", Readable.from([Buffer.from("a"), Buffer.from("b")]));

    const seg = await store.get("live/a/720p/seg_1.m4s");
    expect(Buffer.from(seg!.body).equals(segment)).toBe(true);
    expect(seg).toMatchObject({ size: segment.length, contentType: "video/iso.segment", cacheControl: CACHE_CONTROL.immutable });
    expect(await store.head("live/a/720p.m3u8")).toMatchObject({ contentType: "application/vnd.apple.mpegurl", cacheControl: "public, max-age=1", size: 8 });
    expect((await store.head("live/a/init.mp4"))?.contentType).toBe("video/mp4; custom");
    expect(new TextDecoder().decode((await store.get("live/a/notes.txt"))!.body)).toBe("ab");
  });

  it("lists keys under a prefix, sorted, without its own hidden files", async () => {
    expect(await store.list("live/a/")).toEqual(["live/a/720p.m3u8", "live/a/720p/seg_1.m4s", "live/a/init.mp4", "live/a/notes.txt"]);
    expect(await store.list("live/a/720p")).toEqual(["live/a/720p.m3u8", "live/a/720p/seg_1.m4s"]);
    expect(await store.list("nothing/here/")).toEqual([]);
    await expect(store.list("../")).rejects.toThrow(StorageKeyError);
  });

  it("replaces an object atomically: a concurrent reader sees the old or the new body, never a mix or a part", async () => {
    const versions = [Buffer.alloc(2_000_000, 1), Buffer.alloc(2_000_000, 2)];
    await store.put("live/a/swap.m4s", versions[0]!);
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < 10; i++) await store.put("live/a/swap.m4s", versions[i % 2]!);
      writing = false;
    })();
    let reads = 0;
    while (writing) {
      const got = Buffer.from((await store.get("live/a/swap.m4s"))!.body);
      expect(got.length).toBe(2_000_000);
      expect(got.equals(versions[0]!) || got.equals(versions[1]!)).toBe(true);
      reads++;
    }
    await writer;
    expect(reads).toBeGreaterThan(0);
  });

  it("returns null for missing objects and deletes idempotently (sidecar too)", async () => {
    expect(await store.get("live/missing.ts")).toBeNull();
    expect(await store.head("live/missing.ts")).toBeNull();
    await store.put("live/a/gone.ts", "x");
    await store.delete("live/a/gone.ts");
    await store.delete("live/a/gone.ts");
    expect(await store.head("live/a/gone.ts")).toBeNull();
    expect((await readdir(join(dir, "root/live/a"))).filter((n) => n.includes("gone"))).toEqual([]);
  });

  it("refuses bad keys with StorageKeyError and writes nothing", async () => {
    for (const key of ["../escape.ts", "/abs/x.ts", "live/\u0000.ts", "live/.hidden"]) {
      await expect(store.put(key, "x")).rejects.toThrow(StorageKeyError);
    }
    expect(await readdir(dir)).toEqual(expect.not.arrayContaining(["escape.ts", "abs"]));
  });

  it("reports a missing local file as LocalFileError and leaves no temp file behind", async () => {
    await expect(store.put("live/a/nofile.ts", { file: join(dir, "does-not-exist.ts") })).rejects.toThrow(LocalFileError);
    const ctrl = new AbortController();
    ctrl.abort(new Error("stop"));
    await expect(store.put("live/a/aborted.ts", "x", { signal: ctrl.signal })).rejects.toThrow(/stop/);
    const names = await readdir(join(dir, "root/live/a"));
    expect(names.filter((n) => n.includes(".tmp-"))).toEqual([]);
    expect(names).not.toContain("aborted.ts");
  });

  it("pings when writable, gives a playback URL per key", async () => {
    await expect(store.ping()).resolves.toBeUndefined();
    expect(store.publicUrl("live/a/master.m3u8")).toBe("http://127.0.0.1:8000/media/live/a/master.m3u8");
    expect(() => store.publicUrl("../x")).toThrow(StorageKeyError);
    // A root below a regular file can never be created: the same failure a read-only or vanished disk gives.
    await writeFile(join(dir, "plain-file"), "x");
    const unwritable = new FsObjectStore({ dir: join(dir, "plain-file", "root"), publicBaseUrl: "http://x" });
    await expect(unwritable.ping()).rejects.toThrow(/not writable/);
  });
});

describe("/media/ HTTP handler", () => {
  it("serves an object with its content type, Cache-Control, CORS, length and validators", async () => {
    const res = await fetch(`${base}/media/live/a/720p/seg_1.m4s`, { headers: { Origin: "https://player.example" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("video/iso.segment");
    expect(res.headers.get("cache-control")).toBe(CACHE_CONTROL.immutable);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("accept-ranges")).toBe("bytes");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("content-length")).toBe("300000");
    expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from((await store.get("live/a/720p/seg_1.m4s"))!.body))).toBe(true);

    const playlist = await fetch(`${base}/media/live/a/720p.m3u8`);
    expect(playlist.headers.get("content-type")).toBe("application/vnd.apple.mpegurl");
    expect(playlist.headers.get("cache-control")).toBe("public, max-age=1");
    expect(await playlist.text()).toBe("#EXTM3U\n");
  });

  it("answers CORS preflight and HEAD, refuses other methods", async () => {
    const pre = await fetch(`${base}/media/live/a/720p.m3u8`, { method: "OPTIONS", headers: { Origin: "https://p.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "range" } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-methods")).toBe("GET, HEAD, OPTIONS");
    expect(pre.headers.get("access-control-allow-headers")).toContain("Range");

    const head = await fetch(`${base}/media/live/a/720p/seg_1.m4s`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("300000");
    expect((await head.arrayBuffer()).byteLength).toBe(0);

    const post = await fetch(`${base}/media/live/a/720p.m3u8`, { method: "POST", body: "x" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD, OPTIONS");
  });

  it("serves byte ranges exactly, and 416 for unsatisfiable ones", async () => {
    const whole = Buffer.from((await store.get("live/a/720p/seg_1.m4s"))!.body);
    const first = await fetch(`${base}/media/live/a/720p/seg_1.m4s`, { headers: { Range: "bytes=0-1" } });
    expect(first.status).toBe(206);
    expect(first.headers.get("content-range")).toBe("bytes 0-1/300000");
    expect(Buffer.from(await first.arrayBuffer()).equals(whole.subarray(0, 2))).toBe(true);

    const middle = await fetch(`${base}/media/live/a/720p/seg_1.m4s`, { headers: { Range: "bytes=1000-199999" } });
    expect(middle.status).toBe(206);
    expect(Buffer.from(await middle.arrayBuffer()).equals(whole.subarray(1000, 200_000))).toBe(true);

    const tail = await fetch(`${base}/media/live/a/720p/seg_1.m4s`, { headers: { Range: "bytes=-100" } });
    expect(tail.headers.get("content-range")).toBe("bytes 299900-299999/300000");
    expect(Buffer.from(await tail.arrayBuffer()).equals(whole.subarray(299_900))).toBe(true);

    const bad = await fetch(`${base}/media/live/a/720p/seg_1.m4s`, { headers: { Range: "bytes=300000-" } });
    expect(bad.status).toBe(416);
    expect(bad.headers.get("content-range")).toBe("bytes */300000");
  });

  it("answers 304 to a matching If-None-Match", async () => {
    const first = await fetch(`${base}/media/live/a/720p.m3u8`);
    const etag = first.headers.get("etag");
    expect(etag).toBeTruthy();
    const again = await fetch(`${base}/media/live/a/720p.m3u8`, { headers: { "If-None-Match": etag! } });
    expect(again.status).toBe(304);
  });

  it("404s missing objects (with CORS, so a player can read the status)", async () => {
    const res = await fetch(`${base}/media/live/a/nope.m4s`);
    expect(res.status).toBe(404);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("refuses path tricks with 400 and never serves a file outside the root", async () => {
    await writeFile(join(dir, "secret.txt"), "TOP SECRET");
    for (const path of [
      "/media/../secret.txt",
      "/media/../../../../etc/passwd",
      "/media/%2e%2e/secret.txt",
      "/media/%2E%2E%2Fsecret.txt",
      "/media/live/..%2f..%2f..%2fsecret.txt",
      "/media/..%5csecret.txt",
      "/media//etc/passwd",
      "/media/%2fetc%2fpasswd",
      "/media/live/a/.720p.m3u8.meta.json",
      "/media/live/%00.ts",
    ]) {
      const res = await rawGet(path);
      expect(res.status, path).toBe(400);
      expect(res.body.toString(), path).not.toContain("TOP SECRET");
      expect(res.body.toString(), path).toMatch(/^bad media path: /);
    }
  });

  it("leaves other paths to the caller", async () => {
    const res = await rawGet("/healthz");
    expect(res.status).toBe(418);
  });
});
