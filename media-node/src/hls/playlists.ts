// The canonical HLS playlists (live, master, VOD), rendered from the node's own segment list. FFmpeg's playlist
// restarts with each FFmpeg process (after a crash or a broadcaster's reconnect), so viewers are served these
// instead: one continuous media sequence per rendition, EXT-X-DISCONTINUITY (and a new EXT-X-MAP) where a new
// FFmpeg process began, EXT-X-ENDLIST when the broadcast is over. Pure functions, no I/O.

import { AUDIO_GROUP, type Variant } from "../transcode/args.ts";
import { AAC_LC_CODEC, avcCodecString, variantBandwidth } from "../transcode/ladder.ts";

/** Cache-Control values: segments never change; live playlists change every segment. */
export const CACHE = {
  segment: "public, max-age=31536000, immutable",
  livePlaylist: "public, max-age=1",
} as const;

export interface PlaylistSegment {
  /** relative URI from the playlist */
  uri: string;
  durationS: number;
  /** the init segment (EXT-X-MAP) this segment needs */
  map: string;
  /** first segment of a new FFmpeg run: a timestamp/encoder discontinuity precedes it */
  discontinuity: boolean;
  /** wall-clock time (ms since the epoch) at which the broadcaster sent the segment's first frame */
  programDateTimeMs?: number | undefined;
}

export interface MediaPlaylistOptions {
  /** the configured segment duration; TARGETDURATION is at least this */
  targetS: number;
  /**
   * live: only the last `window` segments (0 = all); vod: always all; event: always all, marked EVENT (segments
   * are only ever appended) and starting at the beginning, for an upload that plays while it is still encoding
   */
  kind: "live" | "vod" | "event";
  window?: number;
  ended: boolean;
}

const fmt = (n: number) => n.toFixed(3);

/** TARGETDURATION: every EXTINF, rounded to the nearest integer, must not exceed it (RFC 8216 4.3.3.1). */
export function targetDuration(segments: readonly PlaylistSegment[], targetS: number): number {
  let max = targetS;
  for (const s of segments) max = Math.max(max, Math.round(s.durationS));
  return Math.max(1, Math.ceil(max));
}

/** EXT-X-SERVER-CONTROL HOLD-BACK: exactly the spec's minimum, three target durations. */
export function holdBackS(segments: readonly PlaylistSegment[], targetS: number): number {
  return 3 * targetDuration(segments, targetS);
}

export function renderMediaPlaylist(all: readonly PlaylistSegment[], opts: MediaPlaylistOptions): string {
  const window = opts.kind === "live" && opts.window ? opts.window : 0;
  const start = window ? Math.max(0, all.length - window) : 0;
  const shown = all.slice(start);
  // Discontinuities that slid out of the window still count (RFC 8216 4.3.3.3).
  let discontinuitySeq = 0;
  for (let i = 1; i < start; i++) if (all[i]!.discontinuity) discontinuitySeq++;
  if (start > 0 && all[start]!.discontinuity) discontinuitySeq++;
  const lines = ["#EXTM3U", "#EXT-X-VERSION:7", `#EXT-X-TARGETDURATION:${targetDuration(all, opts.targetS)}`, `#EXT-X-MEDIA-SEQUENCE:${start}`];
  if (discontinuitySeq > 0) lines.push(`#EXT-X-DISCONTINUITY-SEQUENCE:${discontinuitySeq}`);
  if (opts.kind === "vod") lines.push("#EXT-X-PLAYLIST-TYPE:VOD");
  if (opts.kind === "event") lines.push("#EXT-X-PLAYLIST-TYPE:EVENT", "#EXT-X-START:TIME-OFFSET=0,PRECISE=YES");
  // The closest a player may start to the live edge: three target durations, the minimum RFC 8216bis allows
  // (its default when the tag is absent, stated so that players which honour the tag can rely on it). An EVENT
  // playlist starts players at its beginning, so only a live one says it.
  if (opts.kind === "live" && !opts.ended) lines.push(`#EXT-X-SERVER-CONTROL:HOLD-BACK=${fmt(holdBackS(all, opts.targetS))}`);
  lines.push("#EXT-X-INDEPENDENT-SEGMENTS");
  let map: string | undefined;
  shown.forEach((s, i) => {
    // The first segment of the list needs no DISCONTINUITY tag (nothing precedes it in this playlist).
    if (s.discontinuity && i > 0) lines.push("#EXT-X-DISCONTINUITY");
    if (s.map !== map) {
      lines.push(`#EXT-X-MAP:URI="${s.map}"`);
      map = s.map;
    }
    // Every segment carries the time its first frame left the broadcaster: players measure their latency
    // against it, and it re-anchors the timeline after each discontinuity.
    if (s.programDateTimeMs !== undefined) lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(s.programDateTimeMs).toISOString()}`);
    lines.push(`#EXTINF:${fmt(s.durationS)},`, s.uri);
  });
  if (opts.ended || opts.kind === "vod") lines.push("#EXT-X-ENDLIST");
  return lines.join("\n") + "\n";
}

export interface MasterVariant {
  uri: string;
  /** peak bits/s */
  bandwidth: number;
  averageBandwidth: number;
  width?: number | undefined;
  height?: number | undefined;
  frameRate?: number | undefined;
  codecs: string;
  /** GROUP-ID of the audio rendition this variant plays with */
  audioGroup?: string | undefined;
}

/** A separate audio rendition (EXT-X-MEDIA TYPE=AUDIO) the variants refer to by group id. */
export interface MasterAudioRendition {
  groupId: string;
  name: string;
  uri: string;
  channels: number;
}

export function renderMasterPlaylist(variants: readonly MasterVariant[], audio: readonly MasterAudioRendition[] = []): string {
  const lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"];
  for (const a of audio) {
    lines.push(`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="${a.groupId}",NAME="${a.name}",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="${a.channels}",URI="${a.uri}"`);
  }
  // Highest first: players that start with the first listed variant start with the best guess.
  for (const v of [...variants].sort((a, b) => b.bandwidth - a.bandwidth)) {
    const attrs = [`BANDWIDTH=${v.bandwidth}`, `AVERAGE-BANDWIDTH=${v.averageBandwidth}`];
    if (v.width && v.height) attrs.push(`RESOLUTION=${v.width}x${v.height}`);
    if (v.frameRate) attrs.push(`FRAME-RATE=${v.frameRate.toFixed(3)}`);
    attrs.push(`CODECS="${v.codecs}"`);
    if (v.audioGroup) attrs.push(`AUDIO="${v.audioGroup}"`);
    lines.push(`#EXT-X-STREAM-INF:${attrs.join(",")}`, v.uri);
  }
  return lines.join("\n") + "\n";
}

export interface FfmpegPlaylistEntry {
  /** absolute index in this FFmpeg run (MEDIA-SEQUENCE + position) */
  index: number;
  uri: string;
  durationS: number;
  map: string | undefined;
}

/**
 * Reads FFmpeg's own (sliding) media playlist. A segment appears there only after FFmpeg closed its file, which
 * is what makes it safe to upload. Pure.
 */
export function parseFfmpegPlaylist(text: string): { entries: FfmpegPlaylistEntry[]; ended: boolean } {
  const entries: FfmpegPlaylistEntry[] = [];
  let seq = 0;
  let map: string | undefined;
  let duration: number | undefined;
  let ended = false;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith("#EXT-X-MEDIA-SEQUENCE:")) seq = Number(line.slice(22)) || 0;
    else if (line.startsWith("#EXT-X-MAP:")) map = line.match(/URI="([^"]+)"/)?.[1];
    else if (line.startsWith("#EXTINF:")) duration = Number.parseFloat(line.slice(8));
    else if (line === "#EXT-X-ENDLIST") ended = true;
    else if (!line.startsWith("#") && duration !== undefined) {
      entries.push({ index: seq + entries.length, uri: line, durationS: duration, map });
      duration = undefined;
    }
  }
  return { entries, ended };
}

/** CODECS per variant name from FFmpeg's own master playlist (used for copied rungs, whose codec we did not choose). */
export function parseFfmpegMasterCodecs(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.split("\n").map((l) => l.trim());
  lines.forEach((line, i) => {
    if (!line.startsWith("#EXT-X-STREAM-INF:")) return;
    const codecs = line.match(/CODECS="([^"]+)"/)?.[1];
    const uri = lines.slice(i + 1).find((l) => l && !l.startsWith("#"));
    if (codecs && uri) out.set(uri.split("/")[0]!, codecs);
  });
  return out;
}

/** A master playlist's entries: the variant streams, and the separate audio rendition when there is one. */
export interface MasterEntries {
  variants: (MasterVariant & { name: string })[];
  audio: MasterAudioRendition[];
}

/**
 * What a master playlist lists for `variants`, each pointing at `<variant>/<playlistName>` (index.m3u8 live,
 * vod.m3u8 for the recording). Copied (passthrough) video has no codec we chose: `sourceCodecs` gives its CODECS
 * per variant name (read from FFmpeg's own master), else the level's generic AVC string is used.
 */
export function masterEntries(variants: readonly Variant[], playlistName: string, sourceCodecs: ReadonlyMap<string, string> = new Map()): MasterEntries {
  const streams = variants
    .filter((variant) => !variant.rendition)
    .map((variant) => {
      const { video } = variant;
      const audio = variant.audio ?? variant.audioGroup;
      const bw = variantBandwidth(video, audio);
      const videoCodec = video ? (video.mode === "copy" ? (sourceCodecs.get(variant.name)?.split(",")[0] ?? avcCodecString(video.level)) : avcCodecString(video.level)) : undefined;
      const codecs = [videoCodec, audio ? AAC_LC_CODEC : undefined].filter(Boolean).join(",");
      return { name: variant.name, uri: `${variant.name}/${playlistName}`, bandwidth: bw.peak, averageBandwidth: bw.average, width: video?.width, height: video?.height, frameRate: video?.fps, codecs, audioGroup: variant.audioGroup ? AUDIO_GROUP : undefined };
    });
  const audio = variants
    .filter((variant) => variant.rendition)
    .map((variant) => ({ groupId: AUDIO_GROUP, name: "audio", uri: `${variant.name}/${playlistName}`, channels: variant.audio?.channels ?? 2 }));
  return { variants: streams, audio };
}

/** The same entries with every URI under `prefix/` (a per-stream alias master pointing into one broadcast's folder). */
export function prefixEntries(entries: MasterEntries, prefix: string): MasterEntries {
  const under = <T extends { uri: string }>(xs: T[]) => xs.map((x) => ({ ...x, uri: `${prefix}/${x.uri}` }));
  return { variants: under(entries.variants), audio: under(entries.audio) };
}
