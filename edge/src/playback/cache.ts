// Objects served by /play, through the Cache API keyed WITHOUT the token (every viewer of a stream shares one
// entry), with concurrent misses collapsed onto one source fetch per isolate: the Cache API does not coalesce,
// so a new segment wanted by hundreds of players at once would otherwise reach the origin hundreds of times.
import { toBase64Url } from "../../../shared/encoding.ts";
import { cacheControlFor, type Kind } from "./path.ts";
import type { MediaSource } from "./source.ts";

export interface Stored {
  body: ArrayBuffer;
  etag: string;
  cacheControl: string;
  contentType: string;
}

/**
 * How a request was answered: from the isolate's memory, from the Cache API, by joining another request's
 * in-flight fetch, or by its own fetch from the source.
 */
export type CacheOutcome = "memory" | "hit" | "coalesced" | "miss";

/**
 * Hot objects per isolate, in front of the Cache API: a live stream's viewers all want the same few newest
 * segments and playlists, and answering them from memory saves a cache read (and a copy) per request. Bounded
 * by bytes, least recently used first out; an entry lives as long as its Cache-Control max-age allows.
 */
export class MemoryCache {
  readonly #entries = new Map<string, { stored: Stored; until: number }>();
  #bytes = 0;
  readonly maxBytes: number;
  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }
  get(key: string, now = Date.now()): Stored | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    this.#entries.delete(key);
    if (e.until <= now) {
      this.#bytes -= e.stored.body.byteLength;
      return undefined;
    }
    this.#entries.set(key, e); // most recently used last
    return e.stored;
  }
  set(key: string, stored: Stored, now = Date.now()): void {
    const maxAge = /max-age=(\d+)/.exec(stored.cacheControl)?.[1];
    const size = stored.body.byteLength;
    if (!maxAge || size > this.maxBytes / 8) return;
    const old = this.#entries.get(key);
    if (old) {
      this.#entries.delete(key);
      this.#bytes -= old.stored.body.byteLength;
    }
    this.#entries.set(key, { stored, until: now + Number(maxAge) * 1000 });
    this.#bytes += size;
    for (const [k, e] of this.#entries) {
      if (this.#bytes <= this.maxBytes) break;
      this.#entries.delete(k);
      this.#bytes -= e.stored.body.byteLength;
    }
  }
  get bytes(): number {
    return this.#bytes;
  }
}

let memory: MemoryCache | undefined;
/** The isolate's memory cache, sized on first use. */
export function memoryCache(maxBytes: number): MemoryCache {
  if (!memory || memory.maxBytes !== maxBytes) memory = new MemoryCache(maxBytes);
  return memory;
}

/** Token-free cache key: one entry per object, whoever asks. */
export function cacheKeyFor(origin: string, streamId: string, path: string): string {
  return `${origin}/_play-cache/${streamId}/${path}`;
}

// In-flight source fetches per isolate, by cache key. An entry stays until its object is in the cache, so a
// request arriving between "fetched" and "cached" joins it rather than fetching again.
const inflight = new Map<string, Promise<Stored | null>>();

/** For tests and the bench: how many source fetches this isolate made. */
export const sourceFetches = { count: 0 };

export interface LoadOptions {
  cache: Cache;
  memory?: MemoryCache;
  source: MediaSource;
  cacheKey: string;
  storageKey: string;
  kind: Kind;
  contentType: string;
  waitUntil(p: Promise<unknown>): void;
}

export async function loadObject(o: LoadOptions): Promise<{ stored: Stored | null; outcome: CacheOutcome }> {
  const hot = o.memory?.get(o.cacheKey);
  if (hot) return { stored: hot, outcome: "memory" };
  const joined = inflight.get(o.cacheKey);
  if (joined) return { stored: await joined, outcome: "coalesced" };
  const cached = await o.cache.match(o.cacheKey);
  if (cached) {
    const stored = await fromResponse(cached, o.contentType);
    if (stored) {
      o.memory?.set(o.cacheKey, stored);
      return { stored, outcome: "hit" };
    }
  }
  // Re-check: another request may have started the fetch while this one waited for cache.match.
  const late = inflight.get(o.cacheKey);
  if (late) return { stored: await late, outcome: "coalesced" };
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const fetching = (async (): Promise<Stored | null> => {
    sourceFetches.count++;
    const obj = await o.source.get(o.storageKey);
    if (!obj) return null;
    const stored: Stored = {
      body: obj.body,
      etag: obj.etag ?? (await digestEtag(obj.body)),
      cacheControl: cacheControlFor(o.kind, obj.body),
      contentType: o.contentType,
    };
    o.memory?.set(o.cacheKey, stored);
    const put = o.cache.put(o.cacheKey, toResponse(stored)).catch((error: unknown) => console.error(`playback: cache.put failed for ${o.cacheKey}:`, error));
    o.waitUntil(put.finally(release));
    return stored;
  })();
  inflight.set(o.cacheKey, fetching);
  // Missing objects and failures are not cached: release at once so the next request asks again.
  fetching.then((s) => s === null && release(), () => release());
  void released.then(() => {
    if (inflight.get(o.cacheKey) === fetching) inflight.delete(o.cacheKey);
  });
  return { stored: await fetching, outcome: "miss" };
}

function toResponse(s: Stored): Response {
  return new Response(s.body, {
    headers: { "content-type": s.contentType, "content-length": String(s.body.byteLength), etag: s.etag, "cache-control": s.cacheControl },
  });
}

async function fromResponse(res: Response, contentType: string): Promise<Stored | null> {
  const etag = res.headers.get("etag");
  const cacheControl = res.headers.get("cache-control");
  if (res.status !== 200 || !etag || !cacheControl) {
    await res.body?.cancel();
    return null;
  }
  return { body: await res.arrayBuffer(), etag, cacheControl, contentType };
}

async function digestEtag(body: ArrayBuffer): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  return `"${toBase64Url(d.subarray(0, 18))}"`;
}

/** `If-None-Match` against our strong ETag (a list, `*`, or weak forms of it all match). */
export function notModified(ifNoneMatch: string | null, etag: string): boolean {
  if (!ifNoneMatch) return false;
  const bare = etag.replace(/^W\//, "");
  return ifNoneMatch.split(",").some((t) => {
    const v = t.trim();
    return v === "*" || v.replace(/^W\//, "") === bare;
  });
}

export type RangeResult = { kind: "full" } | { kind: "partial"; start: number; end: number } | { kind: "unsatisfiable" };

/** One `bytes=` range (RFC 9110); several ranges or another unit are answered with the whole object. */
export function parseRange(header: string | null, size: number): RangeResult {
  if (!header) return { kind: "full" };
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return { kind: "full" };
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) return { kind: "unsatisfiable" };
    return { kind: "partial", start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return { kind: "unsatisfiable" };
  return { kind: "partial", start, end };
}
