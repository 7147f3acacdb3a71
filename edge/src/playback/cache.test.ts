import { describe, expect, it } from "vitest";
import { cacheKeyFor, loadObject, MemoryCache, notModified, parseRange, type Stored } from "./cache.ts";
import type { MediaSource } from "./source.ts";

const stored = (bytes: number, cacheControl = "public, max-age=60"): Stored => ({ body: new ArrayBuffer(bytes), etag: '"e"', cacheControl, contentType: "video/iso.segment" });

describe("MemoryCache", () => {
  it("keeps entries for their max-age and evicts the least recently used past its byte budget", () => {
    const m = new MemoryCache(1000);
    m.set("a", stored(100), 0);
    m.set("b", stored(100, "public, max-age=1"), 0);
    expect(m.get("a", 500)).toBeDefined();
    expect(m.get("b", 999)).toBeDefined();
    expect(m.get("b", 1000)).toBeUndefined();
    m.set("c", stored(120), 0);
    // a (100) + c (120) + 9 x 110 is past 1000: the least recently used go first, a then c.
    for (let i = 0; i < 9; i++) m.set(`f${i}`, stored(110), 0);
    expect(m.bytes).toBeLessThanOrEqual(1000);
    expect(m.get("a", 1)).toBeUndefined();
    expect(m.get("c", 1)).toBeUndefined();
    expect(m.get("f8", 1)).toBeDefined();
  });

  it("skips objects without a max-age and objects too large for it", () => {
    const m = new MemoryCache(800);
    m.set("nocache", stored(10, "no-store"));
    m.set("huge", stored(101));
    expect(m.get("nocache")).toBeUndefined();
    expect(m.get("huge")).toBeUndefined();
  });
});

describe("loadObject against the Cache API", () => {
  it("fetches once, then answers from the Cache API when memory is off; a missing object is not cached", async () => {
    let fetches = 0;
    const source: MediaSource = {
      kind: "origin",
      async get(key) {
        fetches++;
        return key.endsWith("missing.m4s") ? null : { body: new TextEncoder().encode("segment-bytes").buffer as ArrayBuffer };
      },
    };
    const cache = await caches.open(`test-${Date.now()}`);
    const waits: Promise<unknown>[] = [];
    const opts = (path: string) => ({ cache, source, cacheKey: cacheKeyFor("http://edge", "str_c", path), storageKey: `live/str_c/${path}`, kind: "segment" as const, contentType: "video/iso.segment", waitUntil: (p: Promise<unknown>) => void waits.push(p) });
    const first = await loadObject(opts("seg_1.m4s"));
    expect(first.outcome).toBe("miss");
    await Promise.all(waits);
    const second = await loadObject(opts("seg_1.m4s"));
    expect(second.outcome).toBe("hit");
    expect(new TextDecoder().decode(second.stored!.body)).toBe("segment-bytes");
    expect(second.stored!.cacheControl).toBe("public, max-age=31536000, immutable");
    expect(fetches).toBe(1);
    expect((await loadObject(opts("missing.m4s"))).stored).toBeNull();
    expect((await loadObject(opts("missing.m4s"))).outcome).toBe("miss");
    expect(fetches).toBe(3);
  });

  it("an origin failure reaches every joined request, and the next request tries again", async () => {
    let calls = 0;
    let entered!: () => void;
    const inSource = new Promise<void>((r) => (entered = r));
    let fail!: (e: Error) => void;
    const source: MediaSource = {
      kind: "origin",
      get() {
        calls++;
        if (calls > 1) return Promise.resolve({ body: new ArrayBuffer(4) });
        entered();
        return new Promise((_, reject) => (fail = reject));
      },
    };
    const cache = await caches.open(`test-fail-${Date.now()}`);
    const o = { cache, source, cacheKey: "http://edge/_play-cache/str_f/seg.m4s", storageKey: "live/str_f/seg.m4s", kind: "segment" as const, contentType: "video/iso.segment", waitUntil: () => {} };
    const first = loadObject(o);
    await inSource;
    const joined = [loadObject(o), loadObject(o)];
    fail(new Error("origin down"));
    const results = await Promise.allSettled([first, ...joined]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
    expect(calls).toBe(1);
    expect((await loadObject(o)).outcome).toBe("miss");
    expect(calls).toBe(2);
  });
});

describe("conditional and ranged requests", () => {
  it("matches If-None-Match lists, weak forms and *", () => {
    expect(notModified('"a", "b"', '"b"')).toBe(true);
    expect(notModified('W/"b"', '"b"')).toBe(true);
    expect(notModified("*", '"b"')).toBe(true);
    expect(notModified('"c"', '"b"')).toBe(false);
    expect(notModified(null, '"b"')).toBe(false);
  });

  it("parses one byte range, answers several or other units with the whole object", () => {
    expect(parseRange("bytes=0-9", 100)).toEqual({ kind: "partial", start: 0, end: 9 });
    expect(parseRange("bytes=90-200", 100)).toEqual({ kind: "partial", start: 90, end: 99 });
    expect(parseRange("bytes=-5", 100)).toEqual({ kind: "partial", start: 95, end: 99 });
    expect(parseRange("bytes=100-", 100)).toEqual({ kind: "unsatisfiable" });
    expect(parseRange("bytes=5-1", 100)).toEqual({ kind: "unsatisfiable" });
    expect(parseRange("bytes=-0", 100)).toEqual({ kind: "unsatisfiable" });
    expect(parseRange("bytes=0-1,5-6", 100)).toEqual({ kind: "full" });
    expect(parseRange("items=0-1", 100)).toEqual({ kind: "full" });
  });
});
