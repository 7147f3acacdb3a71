// Settings of the live media node itself: identity, RTMP ingest, transcode, HTTP listeners and logs.
// Storage (storage.ts) and the bus (nats.ts) are separate groups the media node reads as well.

import { availableParallelism, hostname } from "node:os";
import { resolve } from "node:path";
import { bool, int, list, num, oneOf, port, secret, text, type SettingsOf } from "../../../shared/settings/settings.ts";

const ROOT = resolve(import.meta.dirname, "../../..");

/** Rungs a node can encode (transcode/ladder.ts has their sizes and bitrates); 240p is available but not a default. */
export const RUNG_NAMES = ["1080p", "720p", "480p", "360p", "240p"] as const;
export type RungName = (typeof RUNG_NAMES)[number];
export const DEFAULT_LADDER: RungName[] = ["1080p", "720p", "480p", "360p"];

const host = (env: string, doc: string) => text(env, "127.0.0.1", doc, { pattern: /^[A-Za-z0-9.:\-[\]]+$/ });
const pattern = (re: RegExp) => (s: string) => {
  if (!re.test(s)) throw new Error(`must match ${re}`);
  return s;
};

export const mediaNodeSettings = {
  // identity
  nodeId: text("MEDIA_NODE_ID", hostname().replace(/[^A-Za-z0-9_.-]/g, "-") || "media-node", "names this node in events (`source: media-node/<id>`) and logs", {
    pattern: /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/,
    defaultText: "hostname",
  }),
  // RTMP ingest
  rtmpHost: host("MEDIA_RTMP_HOST", "address the RTMP (and RTMPS) listener binds; 0.0.0.0 to accept broadcasters from outside"),
  rtmpPort: port("MEDIA_RTMP_PORT", 1935, "RTMP listener port"),
  rtmpsPort: port("MEDIA_RTMPS_PORT", 1936, "RTMPS listener port, used only when MEDIA_RTMPS_CERT and MEDIA_RTMPS_KEY are set"),
  rtmpsCert: text("MEDIA_RTMPS_CERT", undefined, "PEM certificate file; with MEDIA_RTMPS_KEY it turns RTMPS on", { optional: true }),
  rtmpsKey: text("MEDIA_RTMPS_KEY", undefined, "PEM private key file for RTMPS", { optional: true }),
  apps: list("MEDIA_RTMP_APPS", ["live"], "comma-separated RTMP apps that accept publishing; anything else is refused", pattern(/^[A-Za-z0-9_-]{1,32}$/)),
  publishTokenSecret: secret("PUBLISH_TOKEN_SECRET", "HMAC secret shared with the edge, which mints publish tokens with it; no default"),
  reconnectGraceS: num("MEDIA_RECONNECT_GRACE_S", 10, "a broadcaster who reconnects within this many seconds continues the same stream (same playlist, EXT-X-DISCONTINUITY)", { min: 0, max: 300 }),
  // transcode
  ffmpegPath: text("MEDIA_FFMPEG_PATH", "ffmpeg", "FFmpeg binary (5.1+ with libx264, aac, hls fmp4)"),
  ffprobePath: text("MEDIA_FFPROBE_PATH", "ffprobe", "ffprobe binary, used only when the RTMP metadata does not describe the source"),
  segmentS: int("MEDIA_SEGMENT_S", 2, "HLS segment duration in seconds; a keyframe is forced at every boundary (1 = lowest latency; see the media node's Latency notes)", { min: 1, max: 10 }),
  ladder: list<RungName>("MEDIA_LADDER", DEFAULT_LADDER, "rungs to encode (240p also available); rungs taller than the source are skipped, never upscaled", (s) => {
    if (!(RUNG_NAMES as readonly string[]).includes(s)) throw new Error(`must be one of ${RUNG_NAMES.join(", ")}`);
    return s as RungName;
  }),
  passthrough: bool("MEDIA_PASSTHROUGH", false, "add a `source` rung that copies H.264 from the broadcaster unchanged (no re-encode)"),
  separateAudio: bool("MEDIA_SEPARATE_AUDIO", true, "encode the audio once as its own HLS rendition every video variant plays with; false muxes a copy into each variant"),
  x264Preset: oneOf("MEDIA_X264_PRESET", "veryfast", ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"] as const, "libx264 preset; faster presets trade quality for CPU"),
  rwTimeoutS: num("MEDIA_RW_TIMEOUT_S", 3, "FFmpeg gives up on the RTMP pull after this many seconds of silence, so a stream ends promptly when the publisher leaves", { min: 1, max: 60 }),
  maxRestarts: int("MEDIA_MAX_RESTARTS", 5, "FFmpeg restarts per stream (while the publisher is there) before the stream ends as transcoder-failed", { min: 0, max: 100 }),
  // Encoders send their metadata and sequence headers before any media, within milliseconds of the publish: a
  // broadcaster that sent none by then sends none, and every ms waited here delays the first segment.
  metadataWaitMs: int("MEDIA_METADATA_WAIT_MS", 500, "ms to wait for the publisher's RTMP metadata (and AAC header) before probing the source with ffprobe", { min: 0, max: 30_000 }),
  drainMaxS: num(
    "MEDIA_DRAIN_MAX_S",
    120,
    "after the broadcaster leaves, FFmpeg encodes what it already received for as long as it makes progress, at most this many seconds (a warning is logged if this cuts the recording)",
    { min: 1, max: 3600 },
  ),
  // overload: a node never falls behind live for good, and takes no stream it cannot encode
  maxLiveStreams: int(
    "MEDIA_MAX_LIVE_STREAMS",
    Math.max(1, availableParallelism()),
    "live streams this node encodes at once; the next publish is refused (`node-full`) until one ends",
    { min: 1, max: 1000, defaultText: "CPU cores" },
  ),
  shedBelowSpeed: num(
    "MEDIA_SHED_BELOW_SPEED",
    0.9,
    "the ladder must encode at least this fast (media seconds encoded per second, 1 = real time); below it over MEDIA_SHED_AFTER_S the top rung is shed (0 = never shed)",
    { min: 0, max: 10 },
  ),
  // A window of several seconds: RTMP over TCP delivers a broadcaster's network hiccup late but whole, so the
  // encoded media time catches up within it; only an encoder that is too slow stays below.
  shedAfterS: num("MEDIA_SHED_AFTER_S", 6, "window (seconds) over which the ladder's speed is measured; below MEDIA_SHED_BELOW_SPEED over a full window, a rung is shed (again)", { min: 1, max: 300 }),
  liveWindow: int("MEDIA_LIVE_WINDOW", 15, "segments listed in a live playlist (a sliding window; the VOD playlist lists all)", { min: 3, max: 10_000 }),
  // storage layout
  workDir: text("MEDIA_WORK_DIR", resolve(ROOT, "var/media"), "local folder for FFmpeg output before upload (one subfolder per broadcast)", { defaultText: "`./var/media`" }),
  keyPrefix: text("MEDIA_KEY_PREFIX", "live", "object key prefix; a broadcast lives under <prefix>/<streamId>/<broadcastId>/", { pattern: /^[A-Za-z0-9_-]{1,64}$/ }),
  record: bool("MEDIA_RECORD", true, "keep a VOD playlist of the whole broadcast (a publish token may turn it off with rec=false)"),
  // HTTP
  httpHost: host("MEDIA_HTTP_HOST", "address of the debugging HTTP listener (/media/ of the fs storage driver; it applies no playback policy: viewers play through the edge)"),
  httpPort: port("MEDIA_HTTP_PORT", 8000, "debugging HTTP listener port"),
  opsHost: host("MEDIA_OPS_HOST", "address of the operations listener (/healthz, /metrics); keep it on loopback or a private interface"),
  opsPort: port("MEDIA_OPS_PORT", 8001, "operations listener port (0 = any free port)"),
  healthTimeoutMs: int("MEDIA_HEALTH_TIMEOUT_MS", 2000, "each /healthz probe (RTMP, storage, bus) fails after this many ms", { min: 100, max: 30_000 }),
  healthCacheMs: int("MEDIA_HEALTH_CACHE_MS", 2000, "a /healthz answer is reused for this many ms, so a flood of checks cannot hammer storage (0 = probe every time)", { min: 0, max: 60_000 }),
  // logs
  logLevel: oneOf("MEDIA_LOG_LEVEL", "info", ["debug", "info", "warn", "error"] as const, "log level; logs are JSON lines on stdout"),
} as const;

export type MediaConfig = SettingsOf<typeof mediaNodeSettings>;

export function mediaNodeProblems(c: MediaConfig): string[] {
  return Boolean(c.rtmpsCert) !== Boolean(c.rtmpsKey) ? ["MEDIA_RTMPS_CERT and MEDIA_RTMPS_KEY must be set together"] : [];
}
