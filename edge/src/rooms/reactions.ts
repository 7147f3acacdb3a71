// Reactions are high-rate and only interesting in aggregate: clicks are counted per emoji and the room gets
// one `reactions` frame per window (ROOM_REACTION_FLUSH_MS) with the counts, not one frame per click.

/** Distinct emoji counted per window; more in one window are dropped (keeps the frame small). */
export const MAX_EMOJI_PER_WINDOW = 64;

export class ReactionAggregator {
  private counts = new Map<string, number>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly windowMs: number;
  private readonly emit: (counts: Record<string, number>) => void;

  constructor(windowMs: number, emit: (counts: Record<string, number>) => void) {
    this.windowMs = windowMs;
    this.emit = emit;
  }

  add(emoji: string): void {
    const current = this.counts.get(emoji);
    if (current === undefined && this.counts.size >= MAX_EMOJI_PER_WINDOW) return;
    this.counts.set(emoji, (current ?? 0) + 1);
    this.timer ??= setTimeout(() => this.flush(), this.windowMs);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.counts.size === 0) return;
    const counts = Object.fromEntries(this.counts);
    this.counts.clear();
    this.emit(counts);
  }
}
