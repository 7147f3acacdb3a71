// Which renditions to encode for a source, and how. Pure: (source, settings) -> rungs.
//
// Bitrates follow Apple's HLS authoring specification (H.264 table, 30 fps: 1920x1080 6000k, 1280x720 3000k,
// 768x432 1100k, 640x360 365k, 416x234 145k); 480p takes the 432p tier. Above 30 fps a rung gets 1.5x, as the
// spec suggests for high frame rates. A rung's name is its short side, so a portrait phone stream (720x1280)
// gets a 720x1280 top rung like its landscape twin gets 1280x720, with the same pixel count and bitrate.
// Rungs larger than the source's short side are dropped (upscaling only costs bits); a source smaller than
// every rung gets one rung at its own size. Peak = 110% of average (Apple: <= 110% for VOD, a safe value for
// live CBR-ish encodes too). Audio keeps the source's channel count, capped at stereo: a mono source upmixed to
// two identical channels only costs bits.

import type { RungName } from "../config.ts";

export interface SourceInfo {
  video?: { width: number; height: number; fps?: number | undefined; codec?: string | undefined };
  audio?: { channels?: number | undefined; sampleRate?: number | undefined; codec?: string | undefined };
}

export interface VideoRung {
  name: string;
  /** `copy`: the broadcaster's H.264 unchanged (passthrough); keyframes are then the broadcaster's */
  mode: "encode" | "copy";
  width: number;
  height: number;
  fps: number | undefined;
  /** average video bitrate, kbit/s */
  kbps: number;
  maxKbps: number;
  bufKbps: number;
  /** H.264 level as written to the stream and to CODECS, e.g. "3.1" */
  level: string;
}

export interface AudioSpec {
  kbps: number;
  channels: number;
  sampleRate: number;
}

export interface Ladder {
  video: VideoRung[];
  /** undefined for video-only sources */
  audio: AudioSpec | undefined;
  /**
   * true: audio is encoded once into its own rendition (EXT-X-MEDIA TYPE=AUDIO) that every video variant plays
   * with; false: each video variant carries its own copy of the audio. Only true when there is video and audio.
   */
  separateAudio: boolean;
}

/** Per rung: `height` is the short side (the height of a landscape rung, the width of a portrait one). */
export const RUNG_TABLE: Record<RungName, { height: number; kbps: number }> = {
  "1080p": { height: 1080, kbps: 6000 },
  "720p": { height: 720, kbps: 3000 },
  "480p": { height: 480, kbps: 1100 },
  "360p": { height: 360, kbps: 365 },
  "240p": { height: 240, kbps: 145 },
};

export const AUDIO: AudioSpec = { kbps: 128, channels: 2, sampleRate: 48000 };

/** The audio encode for a source: AUDIO, with the source's channel count (1 or 2; unknown counts as stereo). */
export function audioFor(source: NonNullable<SourceInfo["audio"]>): AudioSpec {
  const n = source.channels;
  const channels = n !== undefined && Number.isFinite(n) && n >= 1 && n < 2 ? 1 : 2;
  return { ...AUDIO, channels };
}

/** H.264 Annex A limits: max macroblocks per second and per frame, per level. */
const LEVELS: [string, number, number][] = [
  ["3.0", 40_500, 1_620],
  ["3.1", 108_000, 3_600],
  ["3.2", 216_000, 5_120],
  ["4.0", 245_760, 8_192],
  ["4.2", 522_240, 8_704],
  ["5.1", 983_040, 36_864],
  ["5.2", 2_073_600, 36_864],
];

/** The lowest H.264 level that fits width x height at fps. */
export function h264Level(width: number, height: number, fps = 30): string {
  const mbs = Math.ceil(width / 16) * Math.ceil(height / 16);
  for (const [level, perSecond, perFrame] of LEVELS) if (mbs <= perFrame && mbs * fps <= perSecond) return level;
  return "5.2";
}

/** RFC 6381 CODECS value for High profile H.264 at `level` (avc1.64 00 LL). */
export function avcCodecString(level: string): string {
  const idc = Math.round(Number(level) * 10);
  return `avc1.6400${idc.toString(16).padStart(2, "0")}`;
}

export const AAC_LC_CODEC = "mp4a.40.2";

const even = (n: number) => Math.max(2, Math.round(n / 2) * 2);

/** The source's short side: what rung names and the no-upscaling rule compare against. */
const shortSide = (v: { width: number; height: number }) => Math.min(v.width, v.height);

/** A rung whose short side is `short`, in the source's orientation and aspect ratio, with even dimensions. */
function rung(name: string, short: number, kbps: number, source: { width: number; height: number; fps?: number | undefined }): VideoRung {
  const portrait = source.height > source.width;
  const long = even((short * Math.max(source.width, source.height)) / shortSide(source));
  const width = portrait ? even(short) : long;
  const height = portrait ? long : even(short);
  const fps = source.fps;
  const rate = fps !== undefined && fps > 31 ? Math.round(kbps * 1.5) : kbps;
  return { name, mode: "encode", width, height, fps, kbps: rate, maxKbps: Math.round(rate * 1.1), bufKbps: Math.round(rate * 1.5), level: h264Level(width, height, fps ?? 30) };
}

export interface LadderSettings {
  rungs: readonly RungName[];
  passthrough: boolean;
  /** one audio rendition for all video variants (default) instead of audio muxed into each */
  separateAudio?: boolean;
}

export function selectLadder(source: SourceInfo, settings: LadderSettings): Ladder {
  const audio = source.audio ? audioFor(source.audio) : undefined;
  const v = source.video;
  if (!v) return { video: [], audio, separateAudio: false };
  const short = shortSide(v);
  const wanted = [...new Set(settings.rungs)].map((name) => ({ name, ...RUNG_TABLE[name] })).sort((a, b) => b.height - a.height);
  const video = wanted.filter((r) => r.height <= short).map((r) => rung(r.name, r.height, r.kbps, v));
  if (video.length === 0) {
    // Smaller than every rung: one rung at the source's size, bitrate scaled down from the smallest rung by area.
    const smallest = wanted[wanted.length - 1] ?? { height: 240, kbps: 145 };
    const kbps = Math.max(100, Math.round((smallest.kbps * short * short) / (smallest.height * smallest.height)));
    video.push(rung(`${even(short)}p`, short, kbps, v));
  }
  if (settings.passthrough && (v.codec === undefined || v.codec === "h264")) {
    // Bitrate unknown up front: announce the top encoded tier scaled to the source's area, a fair upper guess.
    const top = RUNG_TABLE["1080p"];
    const kbps = Math.round((top.kbps * v.width * v.height) / (1920 * 1080));
    video.unshift({ name: "source", mode: "copy", width: v.width, height: v.height, fps: v.fps, kbps, maxKbps: Math.round(kbps * 1.5), bufKbps: kbps, level: h264Level(v.width, v.height, v.fps ?? 30) });
  }
  return { video, audio, separateAudio: audio !== undefined && settings.separateAudio !== false };
}

/** BANDWIDTH (peak) and AVERAGE-BANDWIDTH, bits/s, including audio and ~5% container overhead. */
export function variantBandwidth(video: VideoRung | undefined, audio: AudioSpec | undefined): { peak: number; average: number } {
  const a = audio?.kbps ?? 0;
  const avg = (video?.kbps ?? 0) + a;
  const peak = (video?.maxKbps ?? 0) + a;
  return { peak: Math.round(peak * 1000 * 1.05), average: Math.round(avg * 1000 * 1.05) };
}
