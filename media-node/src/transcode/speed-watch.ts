// Is a live ladder keeping up with its input? FFmpeg's own `speed=` is media time over wall time since the
// process started, so for a live input it starts low (the process waits for the first frames) and creeps
// towards 1 for minutes: it cannot tell "started a second late" from "slower than real time". What can is the
// rate at which the encoded media time (`time=` on the same stats lines) advances over a recent window: about
// 1 while the ladder keeps up (it cannot run ahead of a live input), the ladder's real speed once it falls
// behind. Pure: fed (wall ms, media s) samples, it answers.

export interface SpeedWatchOptions {
  /** the ladder must encode at least this fast (1 = realtime); 0 disables the watch */
  belowSpeed: number;
  /** over a window this long, seconds */
  windowS: number;
}

export interface SpeedVerdict {
  /** media seconds encoded per wall second over the last window, once a full window was seen */
  speed: number | undefined;
  /** the speed over a full window is below `belowSpeed` */
  behind: boolean;
}

export class SpeedWatch {
  readonly #opts: SpeedWatchOptions;
  #samples: { atMs: number; mediaS: number }[] = [];

  constructor(opts: SpeedWatchOptions) {
    this.#opts = opts;
  }

  /** Forgets every sample (a new run starts its media time again at 0). */
  reset(): void {
    this.#samples = [];
  }

  /** One stats line: at wall time `atMs`, FFmpeg had encoded `mediaS` seconds. */
  sample(atMs: number, mediaS: number): SpeedVerdict {
    const windowMs = this.#opts.windowS * 1000;
    this.#samples.push({ atMs, mediaS });
    // Keep the newest sample that is at least a window old, and everything after it.
    let cut = 0;
    for (let i = 0; i < this.#samples.length; i++) if (atMs - this.#samples[i]!.atMs >= windowMs) cut = i;
    this.#samples = this.#samples.slice(cut);
    const oldest = this.#samples[0]!;
    const spanMs = atMs - oldest.atMs;
    if (spanMs < windowMs) return { speed: undefined, behind: false };
    const speed = (mediaS - oldest.mediaS) / (spanMs / 1000);
    return { speed, behind: this.#opts.belowSpeed > 0 && speed < this.#opts.belowSpeed };
  }
}
