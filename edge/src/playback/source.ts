// Where media comes from: the R2 bucket through the MEDIA binding (production), or an origin over HTTP (local
// runs: the media node's /media; any S3-compatible store with public reads), fetched as a CDN would. The code
// above this interface is the same for both.
import type { Env } from "../env.ts";
import type { EdgeSettings } from "../settings.ts";

export interface SourceObject {
  body: ArrayBuffer;
  /** strong validator from the store, when it gives one */
  etag?: string;
}

export interface MediaSource {
  readonly kind: "r2" | "origin";
  /** the whole object, null when there is none; throws when the store cannot be reached */
  get(key: string): Promise<SourceObject | null>;
}

export class R2Source implements MediaSource {
  readonly kind = "r2";
  readonly #bucket: R2Bucket;
  constructor(bucket: R2Bucket) {
    this.#bucket = bucket;
  }
  async get(key: string): Promise<SourceObject | null> {
    const obj = await this.#bucket.get(key);
    if (!obj) return null;
    return { body: await obj.arrayBuffer(), etag: obj.httpEtag };
  }
}

export class OriginSource implements MediaSource {
  readonly kind = "origin";
  readonly #base: string;
  constructor(base: string) {
    this.#base = base.replace(/\/+$/, "");
  }
  async get(key: string): Promise<SourceObject | null> {
    const res = await fetch(`${this.#base}/${key}`, { headers: { accept: "*/*" } });
    if (res.status === 404 || res.status === 403) {
      await res.body?.cancel();
      return null;
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`origin answered ${res.status} for ${key}`);
    }
    const etag = res.headers.get("etag");
    return { body: await res.arrayBuffer(), ...(etag && /^(W\/)?"[^"]*"$/.test(etag) && !etag.startsWith("W/") ? { etag } : {}) };
  }
}

/** The configured source: PLAYBACK_ORIGIN_URL when set, else the MEDIA binding; null when neither exists. */
export function mediaSource(env: Env, s: EdgeSettings): MediaSource | null {
  if (s.playbackOriginUrl) return new OriginSource(s.playbackOriginUrl);
  if (env.MEDIA) return new R2Source(env.MEDIA);
  return null;
}
