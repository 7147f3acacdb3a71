// The video player: hls.js (its light build, loaded only when needed) where the browser has Media Source
// Extensions, which gives the quality menu and the live edge; the browser's own HLS where it has no MSE but
// plays HLS itself (iPhone Safari). Also the live badge and "go to live", and errors in words.
import { $, h } from "./dom.ts";

type HlsModule = typeof import("hls.js/light");
type Hls = InstanceType<HlsModule["default"]>;

/** Low latency: further than this beyond hls.js's target latency, the player jumps back to live (seconds). */
const LOW_LATENCY_JUMP_S = 3;
/** Low latency: this long without a stall, the target latency goes back to the playlist's PART-HOLD-BACK (ms). */
const LOW_LATENCY_RECOVER_MS = 30_000;

export interface PlayerOptions {
  onError(message: string): void;
  /** called once the first frame is on screen */
  onPlaying?(): void;
}

export class Player {
  readonly video: HTMLVideoElement;
  private hls: Hls | null = null;
  private live = false;
  private readonly opts: PlayerOptions;
  private readonly quality = $<HTMLSelectElement>("quality");
  private readonly badge = $("live-badge");
  private readonly goLive = $<HTMLButtonElement>("go-live");
  private url: string | null = null;
  /** the current source is low-latency HLS (hls.js runs in its low-latency mode, at the playlist's part hold-back) */
  private lowLatency = false;
  /** times playback stalled for lack of buffer since the current source was loaded */
  private stalls = 0;
  /** the viewer paused or sought: they chose where to be, so low latency does not pull them back to live */
  private viewerMoved = false;
  /** the next `seeking` is ours (back to live), not the viewer's */
  private seekingToLive = false;
  /** when the viewer last touched the video's controls (performance.now()) */
  private touchedAt = -Infinity;
  /** jumps back to the live edge the player made by itself (low latency, after falling far behind) */
  private jumps = 0;
  /** when playback last stalled (performance.now()) */
  private stalledAt = -Infinity;
  /** a paused video sends no timeupdate, but the live edge keeps moving away from it */
  private liveTimer: ReturnType<typeof setInterval> | null = null;

  constructor(video: HTMLVideoElement, opts: PlayerOptions) {
    this.video = video;
    this.opts = opts;
    this.quality.addEventListener("change", () => {
      if (this.hls) this.hls.currentLevel = Number(this.quality.value);
    });
    this.goLive.addEventListener("click", () => this.seekToLive());
    video.addEventListener("timeupdate", () => this.updateLive());
    // A seek right after the viewer touched the controls is theirs (hls.js seeks by itself too: its start
    // position, gaps it jumps); a pause is always theirs (the page never pauses).
    const touched = () => (this.touchedAt = performance.now());
    video.addEventListener("pointerdown", touched);
    video.addEventListener("keydown", touched);
    video.addEventListener("seeking", () => {
      if (!this.seekingToLive && performance.now() - this.touchedAt < 2000) this.viewerMoved = true;
      this.seekingToLive = false;
    });
    video.addEventListener("pause", () => (this.viewerMoved = true));
    video.addEventListener("playing", () => this.opts.onPlaying?.(), { once: true });
    video.addEventListener("error", () => {
      if (!this.hls && this.url) this.opts.onError("This video could not be played in this browser.");
    });
  }

  get currentUrl(): string | null {
    return this.url;
  }

  /**
   * Plays `url`; `live` shows the live badge and keeps near the live edge. `lowLatency`: the URL is LL-HLS, played
   * at the distance the playlist asks for (PART-HOLD-BACK, about a second) rather than a few segments back.
   */
  async load(url: string, live: boolean, opts: { lowLatency?: boolean } = {}): Promise<void> {
    if (this.url === url) return;
    this.destroy();
    this.url = url;
    this.live = live;
    this.lowLatency = opts.lowLatency === true;
    this.stalls = 0;
    this.viewerMoved = false;
    this.jumps = 0;
    this.stalledAt = -Infinity;
    const canMse = typeof MediaSource !== "undefined" || "ManagedMediaSource" in globalThis;
    const native = this.video.canPlayType("application/vnd.apple.mpegurl") !== "";
    if (!canMse && native) {
      this.video.src = url;
      this.setQualityOptions([]);
    } else {
      const { default: HlsCtor } = (await import("hls.js/light")) as HlsModule;
      if (this.url !== url) return;
      if (!HlsCtor.isSupported()) return this.opts.onError("This browser cannot play HLS video.");
      // Low latency: hls.js's target is the playlist's PART-HOLD-BACK only when no live sync distance is set here
      // (one would replace it); a little catch-up speed brings it back to that distance after a hiccup, and a
      // stall moves the target back by about one part (hls.js's default is a whole second per stall, for good).
      const hls = new HlsCtor(
        this.lowLatency
          ? { lowLatencyMode: true, backBufferLength: 30, maxLiveSyncPlaybackRate: 1.1, liveSyncOnStallIncrease: 0.34 }
          : { lowLatencyMode: true, liveSyncDurationCount: 2, backBufferLength: 30 },
      );
      this.hls = hls;
      let networkRetries = 0;
      hls.on(HlsCtor.Events.MANIFEST_PARSED, (_e, data) => {
        this.setQualityOptions(data.levels.map((l, i) => ({ index: i, label: l.height ? `${l.height}p` : `${Math.round(l.bitrate / 1000)} kb/s` })));
      });
      hls.on(HlsCtor.Events.LEVEL_SWITCHED, (_e, data) => {
        const level = hls.levels[data.level];
        this.quality.title = level?.height ? `now playing ${level.height}p` : "";
      });
      hls.on(HlsCtor.Events.ERROR, (_e, data) => {
        if (data.details === HlsCtor.ErrorDetails.BUFFER_STALLED_ERROR) {
          this.stalls++;
          this.stalledAt = performance.now();
        }
        if (!data.fatal) return;
        if (data.type === HlsCtor.ErrorTypes.NETWORK_ERROR && networkRetries++ < 5) return hls.startLoad();
        if (data.type === HlsCtor.ErrorTypes.MEDIA_ERROR) return hls.recoverMediaError();
        this.opts.onError(this.live ? "The stream is offline or cannot be reached." : "The video cannot be loaded right now.");
      });
      hls.loadSource(url);
      hls.attachMedia(this.video);
    }
    this.liveTimer = setInterval(() => this.updateLive(), 1000);
    this.video.muted = true; // autoplay is allowed muted; the user unmutes with the controls
    void this.video.play().catch(() => undefined);
    this.updateLive();
  }

  /**
   * How far behind the broadcaster the picture on screen is, seconds: the page's clock minus the program date time
   * of the frame playing (the media node stamps it with the moment that frame reached it). Null before playback
   * or without program date times.
   */
  behindBroadcasterS(): number | null {
    const date = this.hls?.playingDate;
    return date ? (Date.now() - date.getTime()) / 1000 : null;
  }

  /** What the page knows about the current playback, for diagnostics and measurements. */
  diagnostics(): { lowLatency: boolean; stalls: number; jumps: number; behindS: number | null; edgeLatencyS: number | null; targetLatencyS: number | null; bufferS: number; rate: number; url: string | null } {
    const v = this.video;
    let bufferS = 0;
    for (let i = 0; i < v.buffered.length; i++) if (v.buffered.start(i) <= v.currentTime && v.currentTime <= v.buffered.end(i)) bufferS = v.buffered.end(i) - v.currentTime;
    return {
      lowLatency: this.lowLatency,
      stalls: this.stalls,
      jumps: this.jumps,
      behindS: this.behindBroadcasterS(),
      // hls.js's own view: how far behind the live edge of the playlist it plays, and how far it aims to be
      edgeLatencyS: this.hls ? this.hls.latency : null,
      targetLatencyS: this.hls?.targetLatency ?? null,
      bufferS,
      rate: v.playbackRate,
      url: this.url,
    };
  }

  setLive(live: boolean): void {
    this.live = live;
    this.updateLive();
  }

  destroy(): void {
    if (this.liveTimer) clearInterval(this.liveTimer);
    this.liveTimer = null;
    this.hls?.destroy();
    this.hls = null;
    this.url = null;
    this.video.removeAttribute("src");
  }

  private setQualityOptions(levels: { index: number; label: string }[]): void {
    this.quality.replaceChildren(h("option", { value: "-1" }, "Auto"), ...levels.map((l) => h("option", { value: String(l.index) }, l.label)));
    this.quality.disabled = levels.length < 2;
  }

  /** Seconds behind the live edge (0 when not live or unknown). */
  latency(): number {
    if (!this.live) return 0;
    const edge = this.hls?.liveSyncPosition ?? (this.video.seekable.length ? this.video.seekable.end(this.video.seekable.length - 1) : null);
    return edge === null || edge === undefined ? 0 : Math.max(0, edge - this.video.currentTime);
  }

  seekToLive(): void {
    const edge = this.hls?.liveSyncPosition ?? (this.video.seekable.length ? this.video.seekable.end(this.video.seekable.length - 1) : null);
    this.viewerMoved = false;
    if (edge !== null && edge !== undefined) {
      this.seekingToLive = true;
      this.video.currentTime = edge;
    }
    void this.video.play().catch(() => undefined);
  }

  /**
   * Low latency: hls.js speeds playback up a little to get back to its target after a hiccup, but only when it is
   * less than about a segment beyond it; further back (a long stall, or the stream delivered a backlog at once) it
   * would stay behind for good. Unless the viewer moved away themselves, the player then jumps back to live.
   */
  private keepLowLatency(): void {
    const hls = this.hls;
    if (!this.lowLatency || !hls || this.viewerMoved || this.video.paused || this.video.seeking) return;
    // Each stall moves hls.js's target back (by liveSyncOnStallIncrease) and nothing in hls.js moves it forward
    // again: after a while without a stall, the target is the playlist's PART-HOLD-BACK again.
    const holdBack = hls.latestLevelDetails?.partHoldBack;
    if (holdBack && performance.now() - this.stalledAt > LOW_LATENCY_RECOVER_MS && (hls.targetLatency ?? 0) > holdBack + 0.01) hls.targetLatency = holdBack;
    const target = hls.targetLatency;
    const edge = hls.liveSyncPosition;
    if (target === null || edge === null || hls.latency <= target + LOW_LATENCY_JUMP_S) return;
    this.jumps++;
    this.seekingToLive = true;
    this.video.currentTime = edge;
  }

  private updateLive(): void {
    this.keepLowLatency();
    const behind = this.latency();
    // A few segments of slack is normal HLS latency; beyond that the viewer paused or sought back.
    const target = (this.hls?.targetLatency ?? 6) + 4;
    const atEdge = this.live && behind <= target;
    this.badge.hidden = !this.live;
    this.badge.classList.toggle("behind", this.live && !atEdge);
    this.badge.textContent = atEdge ? "LIVE" : "LIVE (behind)";
    this.goLive.hidden = !this.live || atEdge;
  }
}
