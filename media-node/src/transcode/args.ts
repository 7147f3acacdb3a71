// FFmpeg arguments for the live HLS ladder, as pure functions: (plan inputs) -> argv. Tested without processes.
//
// One process decodes once and feeds every rung through `split`, so the decode (and the RTMP pull) is paid
// once per stream. Keyframes are forced at every segment boundary by time (`expr:gte(t,n_forced*S)`) with the
// same expression for every rung, which is what aligns segments across rungs; scene-cut keyframes are off so
// no rung gets an extra IDR the others lack. Segments are fMP4 (CMAF), one folder per variant.

import type { AudioSpec, Ladder, VideoRung } from "./ladder.ts";

export interface Variant {
  /** folder and name of the variant (`720p`, `source`, `audio`) */
  name: string;
  video: VideoRung | undefined;
  /** audio inside this variant's own segments */
  audio: AudioSpec | undefined;
  /** the variant plays with the separate audio rendition (which has this spec) */
  audioGroup: AudioSpec | undefined;
  /** this is the separate audio rendition: listed as EXT-X-MEDIA, not as a variant stream */
  rendition: boolean;
}

/** GROUP-ID of the separate audio rendition in master playlists and FFmpeg's var_stream_map. */
export const AUDIO_GROUP = "aud";

export interface FfmpegPlan {
  input: string;
  inputArgs: string[];
  outputArgs: string[];
  /** the output pattern (`<dir>/%v/index.m3u8`) */
  output: string;
  variants: Variant[];
}

export interface LiveArgsOptions {
  /** rtmp://... (live) or a file (offline bench) */
  input: string;
  /** FFmpeg writes `<outDir>/<variant>/index.m3u8`, `init_N.mp4`, `seg_N.m4s` */
  outDir: string;
  ladder: Ladder;
  segmentS: number;
  preset: string;
  /** live RTMP input: give up after this much silence so the stream ends promptly when the publisher leaves */
  rwTimeoutS?: number | undefined;
  /** FFmpeg's own master playlist (read only for CODECS of copied rungs); ours is written by hls/playlists.ts */
  ffmpegMasterName?: string;
  /** segments kept in FFmpeg's playlist; the node keeps the full list itself */
  listSize?: number;
}

export const FFMPEG_MASTER = "ffmpeg-master.m3u8";

/**
 * The HLS variants a ladder becomes, in FFmpeg's output order: copied rung first, then encoded rungs highest
 * first, each carrying the audio; an audio-only source becomes one `audio` variant.
 */
export function variantsOf(ladder: Ladder): Variant[] {
  const video = [...ladder.video.filter((r) => r.mode === "copy"), ...ladder.video.filter((r) => r.mode === "encode")];
  const audioOnly: Variant = { name: "audio", video: undefined, audio: ladder.audio, audioGroup: undefined, rendition: false };
  if (video.length === 0) return ladder.audio ? [audioOnly] : [];
  if (ladder.separateAudio && ladder.audio) {
    return [...video.map((r) => ({ name: r.name, video: r, audio: undefined, audioGroup: ladder.audio, rendition: false })), { ...audioOnly, rendition: true }];
  }
  return video.map((r) => ({ name: r.name, video: r, audio: ladder.audio, audioGroup: undefined, rendition: false }));
}

/**
 * The video filter graph of the ladder: the source is decoded once and scaled in a cascade, each rung from the
 * next larger one (`[0:v]` -> 720p -> 480p -> 360p), not every rung from the source. Smaller inputs make the
 * lower rungs' scales cheaper (measured: ~7% less wall time for a 720p/480p/360p ladder on a 720p source), and the
 * graph runs on FFmpeg's single filter thread, so that time is on the critical path. The output of rung `i` (in
 * `rungs` order, whatever their heights) is labelled `[v<i>]`; a rung is never scaled up from a smaller one.
 */
export function ladderFilterGraph(rungs: readonly { width: number; height: number }[]): string {
  const order = rungs.map((_, i) => i).sort((a, b) => rungs[b]!.height - rungs[a]!.height);
  const chains: string[] = [];
  let input = "[0:v]";
  order.forEach((index, step) => {
    const r = rungs[index]!;
    const scale = `scale=${r.width}:${r.height}:flags=bicubic${step === 0 ? ",format=yuv420p" : ""}`;
    const last = step === order.length - 1;
    chains.push(last ? `${input}${scale}[v${index}]` : `${input}${scale},split=2[v${index}][c${step}]`);
    input = `[c${step}]`;
  });
  return chains.join(";");
}

/** Builds the whole argv (minus the ffmpeg binary). Throws on an empty ladder (a source with no tracks). */
export function buildLiveArgs(opts: LiveArgsOptions): FfmpegPlan {
  const { ladder, segmentS } = opts;
  const encoded = ladder.video.filter((r) => r.mode === "encode");
  if (ladder.video.length === 0 && !ladder.audio) throw new Error("buildLiveArgs: source has neither video nor audio");

  const inputArgs = ["-hide_banner", "-nostdin", "-loglevel", "level+info", "-stats_period", "1"];
  if (opts.rwTimeoutS !== undefined) {
    inputArgs.push("-rw_timeout", String(Math.round(opts.rwTimeoutS * 1_000_000)));
    // FFmpeg's RTMP input announces both tracks; for a video-only or audio-only source the default probe waits
    // 5 s for the missing one. Half a second is plenty: the ingest sends the sequence headers first.
    inputArgs.push("-analyzeduration", "500000");
  }

  const out: string[] = [];
  if (encoded.length > 0) out.push("-filter_complex", ladderFilterGraph(encoded));
  // Output stream order: per variant, its video then its audio. Stream specifiers (-b:v:N, -c:a:N) count per type.
  const variants = variantsOf(ladder);
  const mapEntries: string[] = [];
  let vIndex = 0;
  let aIndex = 0;
  for (const { name, video: r, audio, audioGroup } of variants) {
    const entry: string[] = [];
    if (r) {
      const v = vIndex++;
      if (r.mode === "copy") out.push("-map", "0:v:0", `-c:v:${v}`, "copy");
      else out.push("-map", `[v${encoded.indexOf(r)}]`, `-c:v:${v}`, "libx264", `-b:v:${v}`, `${r.kbps}k`, `-maxrate:v:${v}`, `${r.maxKbps}k`, `-bufsize:v:${v}`, `${r.bufKbps}k`, `-profile:v:${v}`, "high", `-level:v:${v}`, r.level);
      entry.push(`v:${v}`);
    }
    if (audio) {
      // muxed: one AAC encode per variant; separate: the one audio rendition (encoded once for all)
      out.push("-map", "0:a:0");
      entry.push(`a:${aIndex++}`);
    }
    if (audioGroup || (audio && ladder.separateAudio)) entry.push(`agroup:${AUDIO_GROUP}`);
    mapEntries.push([...entry, `name:${name}`].join(","));
  }
  if (encoded.length > 0) {
    const fps = encoded[0]!.fps;
    // GOP = one segment when the frame rate is known, so x264's own keyframes coincide with the forced ones.
    const gop = fps ? Math.max(1, Math.round(fps * segmentS)) : 250;
    out.push("-preset", opts.preset, "-g", String(gop), "-keyint_min", String(gop), "-sc_threshold", "0", "-bf", "2");
    out.push("-force_key_frames", `expr:gte(t,n_forced*${segmentS})`);
    // Frames keep the broadcaster's timestamps. Constant-frame-rate output (the default for this muxer)
    // duplicates the last frame at the end of the input; when the stream ends just after a segment boundary,
    // that one extra frame becomes a keyframe there and the recording ends with a one-frame segment.
    out.push("-fps_mode", "vfr");
  }
  if (ladder.audio) {
    out.push("-c:a", "aac", "-b:a", `${ladder.audio.kbps}k`, "-ac", String(ladder.audio.channels), "-ar", String(ladder.audio.sampleRate));
  }
  out.push(
    "-f", "hls",
    "-hls_time", String(segmentS),
    "-hls_list_size", String(opts.listSize ?? 6),
    "-hls_segment_type", "fmp4",
    "-hls_fmp4_init_filename", "init.mp4",
    "-hls_flags", "independent_segments",
    "-hls_segment_filename", `${opts.outDir}/%v/seg_%d.m4s`,
    "-master_pl_name", opts.ffmpegMasterName ?? FFMPEG_MASTER,
    // One argument, spaces inside: must reach FFmpeg as one argv entry (never through a shell or a splitter).
    "-var_stream_map", mapEntries.join(" "),
  );
  return { input: opts.input, inputArgs, outputArgs: out, output: `${opts.outDir}/%v/index.m3u8`, variants };
}

/** The full argv for spawning FFmpeg directly (tests, bench). */
export function toArgv(plan: FfmpegPlan): string[] {
  return [...plan.inputArgs, "-i", plan.input, ...plan.outputArgs, "-y", plan.output];
}

// ---- low-latency (LL-HLS) --------------------------------------------------------------------------------

/** One fragmented-MP4 output of a low-latency plan: a rendition written to the FFmpeg process's fd `fd`. */
export interface PipeOutput {
  variant: Variant;
  /** FFmpeg writes it to `pipe:<fd>` (fd 3 is the first extra pipe) */
  fd: number;
}

export interface LowLatencyPlan extends FfmpegPlan {
  /** extra output pipes, in fd order; the spawner opens fds 3.. for them */
  pipes: PipeOutput[];
}

export interface LowLatencyArgsOptions {
  input: string;
  ladder: Ladder;
  segmentS: number;
  preset: string;
  /** frames per second every video rung is encoded at (the part plan counts frames at this rate) */
  fps: number;
  /** `-frag_duration`, microseconds: the encoder closes a fragment (a part) once it holds this much */
  fragmentUs: number;
  rwTimeoutS?: number | undefined;
}

/**
 * The argv of a low-latency run: the same single decode and scale cascade as buildLiveArgs, but each rendition is
 * fragmented MP4 on its own pipe (fd 3, 4, ...) instead of FFmpeg's HLS muxer, which cannot write LL-HLS parts.
 *
 * - the audio is muxed into every video rendition (one pipe, one part per rendition: players load one part per
 *   part duration instead of two, and hls.js's light build plays it); an audio-only source is one audio output;
 * - x264 runs without lookahead, B-frames or frame threads (`-tune zerolatency`, `-bf 0`): each of those holds
 *   frames back, which LL-HLS cannot afford; GOP = segment, keyframes forced at every segment start, no scene cuts;
 * - constant frame rate at `fps`, so every part is the same whole number of frames;
 * - `empty_moov+default_base_moof+frag_keyframe` with `-frag_duration` just under a part: FFmpeg flushes one
 *   fragment per part (and one at each keyframe), `-flush_packets 1` puts it on the pipe at once;
 * - the audio is delayed by its encoder delay (1024 samples): otherwise the AAC priming starts the file before
 *   the video, and the MP4 muxer stretches the first video frame over the gap, making the first part longer than
 *   PART-TARGET. Sound then plays 21 ms (48 kHz) late, far below what anyone notices.
 */
export function buildLowLatencyArgs(opts: LowLatencyArgsOptions): LowLatencyPlan {
  const { ladder, segmentS } = opts;
  if (ladder.video.length === 0 && !ladder.audio) throw new Error("buildLowLatencyArgs: source has neither video nor audio");
  if (ladder.video.some((r) => r.mode === "copy")) throw new Error("buildLowLatencyArgs: a copied rung has the broadcaster's keyframes, not one per segment; low latency encodes every rung");
  const inputArgs = ["-hide_banner", "-nostdin", "-loglevel", "level+info", "-stats_period", "1"];
  if (opts.rwTimeoutS !== undefined) inputArgs.push("-rw_timeout", String(Math.round(opts.rwTimeoutS * 1_000_000)), "-analyzeduration", "500000");
  const out: string[] = [];
  const rungs = ladder.video;
  if (rungs.length > 0) out.push("-filter_complex", ladderFilterGraph(rungs));
  const gop = Math.max(1, Math.round(opts.fps * segmentS));
  const fmp4 = ["-f", "mp4", "-movflags", "empty_moov+default_base_moof+frag_keyframe+skip_trailer", "-frag_duration", String(opts.fragmentUs), "-flush_packets", "1"];
  const audio = (a: AudioSpec, withVideo: boolean) => [
    "-map", "0:a:0", "-c:a", "aac", "-b:a", `${a.kbps}k`, "-ac", String(a.channels), "-ar", String(a.sampleRate),
    ...(withVideo ? ["-af", "asetpts=PTS+1024/SR/TB"] : []),
  ];
  const pipes: PipeOutput[] = [];
  const variants: Variant[] = [];
  rungs.forEach((r, i) => {
    const variant: Variant = { name: r.name, video: r, audio: ladder.audio, audioGroup: undefined, rendition: false };
    variants.push(variant);
    out.push(
      "-map", `[v${i}]`, "-c:v", "libx264", "-preset", opts.preset, "-tune", "zerolatency", "-bf", "0",
      "-b:v", `${r.kbps}k`, "-maxrate", `${r.maxKbps}k`, "-bufsize", `${r.bufKbps}k`, "-profile:v", "high", "-level:v", r.level,
      "-g", String(gop), "-keyint_min", String(gop), "-sc_threshold", "0", "-force_key_frames", `expr:gte(t,n_forced*${segmentS})`,
      "-r", String(opts.fps), "-fps_mode", "cfr",
    );
    if (ladder.audio) out.push(...audio(ladder.audio, true));
    const fd = 3 + i;
    out.push(...fmp4);
    if (i < rungs.length - 1 || rungs.length === 0) out.push(`pipe:${fd}`);
    pipes.push({ variant, fd });
  });
  if (rungs.length === 0 && ladder.audio) {
    const variant: Variant = { name: "audio", video: undefined, audio: ladder.audio, audioGroup: undefined, rendition: false };
    variants.push(variant);
    out.push(...audio(ladder.audio, false), ...fmp4);
    pipes.push({ variant, fd: 3 });
  }
  // The last output's name is the plan's `output` (what toArgv puts last).
  return { input: opts.input, inputArgs, outputArgs: out, output: `pipe:${pipes.at(-1)!.fd}`, variants, pipes };
}
