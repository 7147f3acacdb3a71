// Settings of the media node's VOD worker: how many uploads it processes at once, how JetStream redelivers a
// job whose node went quiet, what a source may be, and how the ladder, poster and storyboard are made.

import { int, list, oneOf, secret, text, type SettingsOf, url } from "../../../shared/settings/settings.ts";
import { DEFAULT_LADDER, RUNG_NAMES, type RungName } from "./media.ts";

export const vodSettings = {
  vodWorkers: int("VOD_WORKERS", 1, "uploads this node processes at once (each runs one FFmpeg ladder that uses every core; 1 suits a 2-core host, 0 turns the worker off)", { min: 0, max: 64 }),
  vodAckWaitS: int("VOD_ACK_WAIT_S", 30, "a job whose node stops extending it for this many seconds (killed, cut off) goes to another node", { min: 2, max: 3600 }),
  vodMaxAttempts: int("VOD_MAX_ATTEMPTS", 3, "deliveries of one job before it ends as media.failed (a retryable failure or a node lost mid-job each cost one)", { min: 1, max: 20 }),
  vodRetryDelayS: int("VOD_RETRY_DELAY_S", 10, "a job that failed for a reason worth retrying (storage, FFmpeg crash) is offered again after this many seconds", { min: 0, max: 3600 }),
  vodMaxDurationS: int("VOD_MAX_DURATION_S", 4 * 3600, "an upload longer than this (after probing) is refused", { min: 1 }),
  vodMaxLongSide: int("VOD_MAX_LONG_SIDE", 4096, "an upload whose picture is larger than this on its long side is refused", { min: 16, max: 16384 }),
  vodLadder: list<RungName>("VOD_LADDER", DEFAULT_LADDER, "rungs to encode for uploads (same names as live); rungs larger than the source are skipped, never upscaled", (s) => {
    if (!(RUNG_NAMES as readonly string[]).includes(s)) throw new Error(`must be one of ${RUNG_NAMES.join(", ")}`);
    return s as RungName;
  }),
  vodSegmentS: int("VOD_SEGMENT_S", 4, "HLS segment duration of uploads, seconds (fMP4); the first one is also how soon an upload becomes playable", { min: 1, max: 10 }),
  vodX264Preset: oneOf("VOD_X264_PRESET", "superfast", ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"] as const, "libx264 preset for uploads, with VOD_X264_PARAMS on top (\"Processing on the media nodes\" gives what each choice costs and gives)"),
  vodX264Params: text("VOD_X264_PARAMS", "mbtree=1:rc-lookahead=10", "libx264 options on top of VOD_X264_PRESET (x264-params syntax), or `none`; the default puts back the macroblock-tree rate control with a 10-frame lookahead that superfast leaves out", {
    pattern: /^(none|[a-z0-9-]+=[A-Za-z0-9.,_-]+(:[a-z0-9-]+=[A-Za-z0-9.,_-]+)*)$/,
  }),
  vodSourceUrl: url("VOD_SOURCE_URL", undefined, "read upload sources over HTTP from the edge (`<edge>/internal/media`, local runs where the bucket is the Worker's simulation); unset: from the storage driver's bucket (R2 over S3 in production)", {
    protocols: ["http:", "https:"],
    optional: true,
  }),
  vodSourceToken: secret("VOD_SOURCE_TOKEN", "Bearer token for VOD_SOURCE_URL (the edge's INTERNAL_API_TOKEN)", { optional: true }),
  vodKeyPrefix: text("VOD_KEY_PREFIX", "vod", "object key prefix; a processed upload lives under <prefix>/<videoId>/", { pattern: /^[A-Za-z0-9_-]{1,64}$/ }),
} as const;

export type VodSettings = SettingsOf<typeof vodSettings>;
