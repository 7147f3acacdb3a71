// Settings of the Streams API and of playback through the Worker, declared once with the shared builders so
// they are checked together, listed in README "Configuration" and folded into the edge's settings module.
import { int, readSettings, type Setting, type SettingsOf, text, url } from "../../../shared/settings/settings.ts";

/** One playback signing key: `kid` goes in the token header so keys can rotate without cutting viewers. */
export interface SigningKey {
  kid: string;
  secret: string;
}

const KID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

/**
 * `kid:secret` pairs, comma or space separated; the first signs new tokens, all of them verify. A credential:
 * its value never appears in an error. (Built by hand because `secrets` has no notion of a key id.)
 */
export function signingKeys(env: string, doc: string): Setting<SigningKey[] | undefined> {
  return {
    env,
    doc,
    default: undefined,
    optional: true,
    secret: true,
    parse(raw) {
      const keys: SigningKey[] = [];
      for (const item of raw.split(/[\s,]+/).filter(Boolean)) {
        const at = item.indexOf(":");
        const kid = at > 0 ? item.slice(0, at) : "";
        const secret = at > 0 ? item.slice(at + 1) : "";
        if (!KID_PATTERN.test(kid)) throw new Error(`item ${keys.length + 1} is not <kid>:<secret> with a kid of [A-Za-z0-9_-]{1,32}`);
        if (secret.length < 32) throw new Error(`the secret of kid '${kid}' must be at least 32 characters`);
        if (keys.some((k) => k.kid === kid)) throw new Error(`kid '${kid}' appears twice`);
        keys.push({ kid, secret });
      }
      if (keys.length === 0) throw new Error("no key given");
      return keys;
    },
  };
}

export const streamsSettingsSpec = {
  publishTokenSecret: { ...text("PUBLISH_TOKEN_SECRET", undefined, "HMAC key of RTMP publish tokens (stream keys); shared with the media nodes", { optional: true }), secret: true },
  rtmpBaseUrl: url("RTMP_BASE_URL", "rtmp://127.0.0.1:1935/live", "RTMP ingest URL (with the app) handed to broadcasters as rtmp.url / obs.server", { protocols: ["rtmp:", "rtmps:"] }),
  playbackBaseUrl: url("PLAYBACK_BASE_URL", "http://127.0.0.1:8787", "public base URL of this Worker's /play routes (or of a CDN in front of them); playback links are <base>/play/<id or token>/live.m3u8", { protocols: ["http:", "https:"] }),
  playbackSigningKeys: signingKeys("PLAYBACK_SIGNING_KEYS", "HS256 keys for viewer tokens of signed streams: kid:secret pairs, the first signs, all verify (rotation)"),
  playbackTokenDefaultTtlS: int("PLAYBACK_TOKEN_DEFAULT_TTL_S", 3600, "lifetime of a viewer token when the request names none, seconds", { min: 60, max: 86_400 }),
  playbackTokenMaxTtlS: int("PLAYBACK_TOKEN_MAX_TTL_S", 86_400, "longest viewer token lifetime that may be asked for, seconds", { min: 60, max: 86_400 }),
  playbackOriginUrl: url("PLAYBACK_ORIGIN_URL", undefined, "pull media from this origin (media node /media, any S3-compatible endpoint) instead of the MEDIA R2 binding", { protocols: ["http:", "https:"], optional: true }),
  mediaKeyPrefix: text("MEDIA_KEY_PREFIX", "live", "object key prefix the media nodes store live streams under (their MEDIA_KEY_PREFIX)", { pattern: /^[A-Za-z0-9_-]{1,64}$/ }),
  playbackStateCacheMs: int("PLAYBACK_STATE_CACHE_MS", 2000, "how long an isolate trusts what it learned of a stream's policy and status before asking its object again, ms", { min: 0, max: 60_000 }),
  playbackMemoryCacheMb: int("PLAYBACK_MEMORY_CACHE_MB", 32, "hot playback objects each isolate keeps in memory in front of the Cache API, MiB (0: none)", { min: 0, max: 96 }),
  streamKeyCheckMax: int("STREAM_KEY_CHECK_MAX", 256, "stream keys one media node may check per /internal/streams/key-check call", { min: 1, max: 1000 }),
};

export type StreamsSettings = SettingsOf<typeof streamsSettingsSpec>;

// Parsed once per distinct env object (the Worker gets one per isolate; tests may pass their own).
const cache = new WeakMap<object, StreamsSettings>();

/** The streams and playback settings for `env`; throws a SettingsError naming every bad one. */
export function streamsSettings(env: object): StreamsSettings {
  let s = cache.get(env);
  if (!s) {
    s = readSettings(streamsSettingsSpec, env as Record<string, unknown>, "streams/playback settings");
    cache.set(env, s);
  }
  return s;
}
