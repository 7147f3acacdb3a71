// Trick-play thumbnails: a storyboard WebVTT whose cues point at regions of sprite images
// (`sprite.jpg#xywh=x,y,w,h`). Parsing is pure so it is tested on its own.

export interface StoryboardCue {
  start: number;
  end: number;
  url: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

function seconds(stamp: string): number {
  const parts = stamp.trim().split(":").map(Number);
  return parts.reduce((acc, p) => acc * 60 + p, 0);
}

/** Cues of a storyboard VTT; image URLs are resolved against the VTT's own URL. Malformed cues are skipped. */
export function parseStoryboard(vtt: string, base: string): StoryboardCue[] {
  const cues: StoryboardCue[] = [];
  const lines = vtt.replace(/\r/g, "").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^([\d:.]+)\s+-->\s+([\d:.]+)/.exec(lines[i] ?? "");
    const target = lines[i + 1]?.trim();
    if (!m || !target) continue;
    const [file, frag] = target.split("#xywh=");
    const box = (frag ?? "").split(",").map(Number);
    if (!file || box.length !== 4 || box.some((n) => !Number.isFinite(n))) continue;
    cues.push({ start: seconds(m[1]!), end: seconds(m[2]!), url: new URL(file, base).toString(), x: box[0]!, y: box[1]!, w: box[2]!, h: box[3]! });
  }
  return cues;
}

/** The cue covering time `t`, or the last one before it. */
export function cueAt(cues: readonly StoryboardCue[], t: number): StoryboardCue | undefined {
  let found: StoryboardCue | undefined;
  for (const c of cues) {
    if (c.start <= t) found = c;
    if (c.start <= t && t < c.end) return c;
  }
  return found;
}
