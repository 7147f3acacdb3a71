// Settings of the live media node (ingest, transcode, live sessions, HTTP). Storage (B2's storage/) and the
// bus (bus/settings.ts) read their own settings; this file covers everything else.
//
// Every setting is declared once below with its env var, default and meaning, so this file IS the reference
// (MediaMTX style). Values are checked with zod at start-up and every problem is reported at once, so a
// misconfigured node refuses to start instead of failing on its first broadcaster.
//
// Secrets (PUBLISH_TOKEN_SECRET) come from the environment or, for local runs, the repo's git-ignored
// .dev.vars; the only default is an obviously-local one used when NODE_ENV is not `production`.

import { hostname } from "node:os";
import { resolve } from "node:path";
import { z } from "zod";
import { ConfigError, type SettingsEnv, settingsEnv, shownValue } from "./settings-env.ts";

const ROOT = resolve(import.meta.dirname, "../..");

const port = z.coerce.number().int().min(0).max(65535);
const bool = z
  .enum(["1", "0", "true", "false", "yes", "no", "on", "off"])
  .transform((v) => v === "1" || v === "true" || v === "yes" || v === "on");
const list = z.string().transform((v) =>
  v
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean),
);

/** Rungs a node can encode (transcode/ladder.ts has their sizes and bitrates); 240p is available but not a default. */
export const RUNG_NAMES = ["1080p", "720p", "480p", "360p", "240p"] as const;
export const DEFAULT_LADDER: RungName[] = ["1080p", "720p", "480p", "360p"];
export type RungName = (typeof RUNG_NAMES)[number];

/** Local-only default so `npm start` and tests work; production must set PUBLISH_TOKEN_SECRET. */
const DEV_PUBLISH_SECRET = "dev-only-publish-token-secret-change-me";

/** env var -> [zod schema, default (raw string) or undefined, meaning] */
const SPEC = {
  // --- identity -------------------------------------------------------------------------------------------
  /** MEDIA_NODE_ID (default: hostname): names this node in events (`source: media-node/<id>`) and logs. */
  nodeId: ["MEDIA_NODE_ID", z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/), hostname().replace(/[^A-Za-z0-9_.-]/g, "-") || "media-node"],

  // --- RTMP ingest ------------------------------------------------------------------------------------------
  /** MEDIA_RTMP_HOST (default 127.0.0.1): address the RTMP (and RTMPS) listener binds; 0.0.0.0 to accept broadcasters from outside. */
  rtmpHost: ["MEDIA_RTMP_HOST", z.string().min(1), "127.0.0.1"],
  /** MEDIA_RTMP_PORT (default 1935): RTMP listener port. */
  rtmpPort: ["MEDIA_RTMP_PORT", port, "1935"],
  /** MEDIA_RTMPS_PORT (default 1936): RTMPS listener port, used only when MEDIA_RTMPS_CERT and MEDIA_RTMPS_KEY are set. */
  rtmpsPort: ["MEDIA_RTMPS_PORT", port, "1936"],
  /** MEDIA_RTMPS_CERT (default none): PEM certificate file; with MEDIA_RTMPS_KEY it turns RTMPS on. */
  rtmpsCert: ["MEDIA_RTMPS_CERT", z.string().optional(), undefined],
  /** MEDIA_RTMPS_KEY (default none): PEM private key file for RTMPS. */
  rtmpsKey: ["MEDIA_RTMPS_KEY", z.string().optional(), undefined],
  /** MEDIA_RTMP_APPS (default live): comma-separated RTMP apps that accept publishing; anything else is refused. */
  apps: ["MEDIA_RTMP_APPS", list.pipe(z.array(z.string().regex(/^[A-Za-z0-9_-]{1,32}$/)).min(1)), "live"],
  /** PUBLISH_TOKEN_SECRET (dev default outside production): HMAC secret shared with the edge that mints publish tokens. */
  publishTokenSecret: ["PUBLISH_TOKEN_SECRET", z.string().min(16, "must be at least 16 characters"), process.env.NODE_ENV === "production" ? undefined : DEV_PUBLISH_SECRET],
  /** MEDIA_RECONNECT_GRACE_S (default 10): a broadcaster who reconnects within this many seconds continues the same stream (same playlist, EXT-X-DISCONTINUITY). */
  reconnectGraceS: ["MEDIA_RECONNECT_GRACE_S", z.coerce.number().min(0).max(300), "10"],

  // --- transcode ------------------------------------------------------------------------------------------
  /** MEDIA_FFMPEG_PATH (default ffmpeg): FFmpeg binary (5.1+ with libx264, aac, hls fmp4). */
  ffmpegPath: ["MEDIA_FFMPEG_PATH", z.string().min(1), "ffmpeg"],
  /** MEDIA_FFPROBE_PATH (default ffprobe): used only when the RTMP metadata does not describe the source. */
  ffprobePath: ["MEDIA_FFPROBE_PATH", z.string().min(1), "ffprobe"],
  /** MEDIA_SEGMENT_S (default 2, 1..10): HLS segment duration in seconds; a keyframe is forced at every boundary. */
  segmentS: ["MEDIA_SEGMENT_S", z.coerce.number().int().min(1).max(10), "2"],
  /** MEDIA_LADDER (default 1080p,720p,480p,360p; 240p also available): rungs to encode; rungs taller than the source are skipped (never upscaled). */
  ladder: ["MEDIA_LADDER", list.pipe(z.array(z.enum(RUNG_NAMES)).min(1)), DEFAULT_LADDER.join(",")],
  /** MEDIA_PASSTHROUGH (default false): add a `source` rung that copies H.264 from the broadcaster unchanged (no re-encode). */
  passthrough: ["MEDIA_PASSTHROUGH", bool, "false"],
  /**
   * MEDIA_SEPARATE_AUDIO (default true): encode the audio once as its own HLS rendition (EXT-X-MEDIA) that every
   * video variant plays with (CMAF style: less CPU, audio stored once); false muxes a copy into each variant.
   */
  separateAudio: ["MEDIA_SEPARATE_AUDIO", bool, "true"],
  /** MEDIA_X264_PRESET (default veryfast): libx264 preset; faster presets trade quality for CPU. */
  x264Preset: ["MEDIA_X264_PRESET", z.enum(["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"]), "veryfast"],
  /** MEDIA_RW_TIMEOUT_S (default 3): FFmpeg gives up on the RTMP pull after this much silence, so a stream ends promptly when the publisher leaves. */
  rwTimeoutS: ["MEDIA_RW_TIMEOUT_S", z.coerce.number().min(1).max(60), "3"],
  /** MEDIA_MAX_RESTARTS (default 5): FFmpeg restarts per stream (while the publisher is there) before the stream is ended as transcoder-failed. */
  maxRestarts: ["MEDIA_MAX_RESTARTS", z.coerce.number().int().min(0).max(100), "5"],
  /** MEDIA_METADATA_WAIT_MS (default 1500): how long to wait for the publisher's RTMP metadata before probing the source with ffprobe. */
  metadataWaitMs: ["MEDIA_METADATA_WAIT_MS", z.coerce.number().int().min(0).max(30_000), "1500"],

  /** MEDIA_LIVE_WINDOW (default 15): segments listed in a live playlist (a sliding window; the VOD playlist lists all). */
  liveWindow: ["MEDIA_LIVE_WINDOW", z.coerce.number().int().min(3).max(10_000), "15"],

  // --- storage layout and URLs --------------------------------------------------------------------------------
  /** MEDIA_WORK_DIR (default ./var/media): local folder for FFmpeg output before upload (one subfolder per broadcast). */
  workDir: ["MEDIA_WORK_DIR", z.string().min(1), resolve(ROOT, "var/media")],
  /** MEDIA_KEY_PREFIX (default live): object key prefix; a broadcast lives under <prefix>/<streamId>/<broadcastId>/. */
  keyPrefix: ["MEDIA_KEY_PREFIX", z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), "live"],
  /** MEDIA_RECORD (default true): keep a VOD playlist of the whole broadcast (a publish token may turn it off with rec=false). */
  record: ["MEDIA_RECORD", bool, "true"],

  // --- HTTP ---------------------------------------------------------------------------------------------------
  /** MEDIA_HTTP_HOST (default 127.0.0.1): address of the HTTP listener (/healthz, /metrics, /media/ for the fs driver). */
  httpHost: ["MEDIA_HTTP_HOST", z.string().min(1), "127.0.0.1"],
  /** MEDIA_HTTP_PORT (default 8000): HTTP listener port. */
  httpPort: ["MEDIA_HTTP_PORT", port, "8000"],
  /** MEDIA_HEALTH_TIMEOUT_MS (default 2000): each /healthz probe (RTMP, storage, bus) fails after this long. */
  healthTimeoutMs: ["MEDIA_HEALTH_TIMEOUT_MS", z.coerce.number().int().min(100).max(30_000), "2000"],

  // --- logs ---------------------------------------------------------------------------------------------------
  /** MEDIA_LOG_LEVEL (default info): debug | info | warn | error; logs are JSON lines on stdout. */
  logLevel: ["MEDIA_LOG_LEVEL", z.enum(["debug", "info", "warn", "error"]), "info"],
} as const satisfies Record<string, readonly [string, z.ZodType, string | undefined]>;

type Spec = typeof SPEC;
export type MediaConfig = { [K in keyof Spec]: z.output<Spec[K][1]> };

export { ConfigError };

type Env = SettingsEnv;

/**
 * Reads every setting from `env` (default: process.env over the repo's .dev.vars) and validates it.
 * Throws one ConfigError listing every problem.
 */
export function loadConfig(env: Env = settingsEnv()): MediaConfig {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, [name, schema, def]] of Object.entries(SPEC) as [string, readonly [string, z.ZodType, string | undefined]][]) {
    const raw = env[name]?.trim() || def;
    if (raw === undefined) {
      const optional = schema.safeParse(undefined);
      if (optional.success) out[key] = undefined;
      else problems.push(`${name} is required`);
      continue;
    }
    const parsed = schema.safeParse(raw);
    if (parsed.success) out[key] = parsed.data;
    else problems.push(`${name}=${shownValue(name, raw)}: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  }
  if (Boolean(out.rtmpsCert) !== Boolean(out.rtmpsKey)) problems.push("MEDIA_RTMPS_CERT and MEDIA_RTMPS_KEY must be set together");
  if (problems.length) throw new ConfigError(`invalid media node configuration:\n  - ${problems.join("\n  - ")}`);
  return out as MediaConfig;
}

/** The env var behind each setting, for error messages and docs. */
export const ENV_NAMES = Object.fromEntries(Object.entries(SPEC).map(([k, [name]]) => [k, name])) as { [K in keyof Spec]: string };
