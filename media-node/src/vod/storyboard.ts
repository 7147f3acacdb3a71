// Trick-play storyboards: small frames at a fixed interval tiled into sprite sheets, described by a WebVTT file
// (cue payload `sheet.jpg#xywh=x,y,w,h`, the form video.js and JW Player read) and by JSON. The interval scales
// with the duration: about 50 tiles for short videos, one every 10 s for long ones. Pure.

export interface StoryboardGeometry {
  /** seconds between tiles */
  intervalS: number;
  /** tiles in the storyboard (one per interval, the last one may cover less) */
  tiles: number;
  tileWidth: number;
  tileHeight: number;
  cols: number;
  rows: number;
  sheets: number;
}

export const STORYBOARD_TARGET_TILES = 50;
export const STORYBOARD_MIN_INTERVAL_S = 1;
export const STORYBOARD_MAX_INTERVAL_S = 10;
/** the long side of a tile; the short side follows the picture's aspect ratio */
export const STORYBOARD_TILE_LONG_SIDE = 160;
/** at most this many tiles across and down per sheet (a 10x10 sheet of 160x90 tiles is 1600x900) */
export const STORYBOARD_MAX_GRID = 10;

const even = (n: number) => Math.max(2, Math.round(n / 2) * 2);

export function storyboardGeometry(durationS: number, picture: { width: number; height: number }): StoryboardGeometry {
  const raw = durationS / STORYBOARD_TARGET_TILES;
  // Whole milliseconds, so FFmpeg's fps filter gets an exact rational (1000/intervalMs).
  const intervalS = Math.round(Math.min(STORYBOARD_MAX_INTERVAL_S, Math.max(STORYBOARD_MIN_INTERVAL_S, raw)) * 1000) / 1000;
  const tiles = Math.max(1, Math.ceil(durationS / intervalS - 1e-9));
  const landscape = picture.width >= picture.height;
  const long = Math.min(STORYBOARD_TILE_LONG_SIDE, Math.max(picture.width, picture.height));
  const tileWidth = landscape ? even(long) : even((long * picture.width) / picture.height);
  const tileHeight = landscape ? even((long * picture.height) / picture.width) : even(long);
  const cols = Math.min(STORYBOARD_MAX_GRID, tiles);
  const rows = Math.min(STORYBOARD_MAX_GRID, Math.ceil(tiles / cols));
  return { intervalS, tiles, tileWidth, tileHeight, cols, rows, sheets: Math.ceil(tiles / (cols * rows)) };
}

/** File name of sheet `i` (0-based), as FFmpeg's image2 muxer writes it with `sprite_%03d.jpg` from 1. */
export function sheetName(i: number): string {
  return `sprite_${String(i + 1).padStart(3, "0")}.jpg`;
}

export interface StoryboardTile {
  startS: number;
  endS: number;
  sheet: string;
  x: number;
  y: number;
}

export function storyboardTiles(g: StoryboardGeometry, durationS: number): StoryboardTile[] {
  const perSheet = g.cols * g.rows;
  const out: StoryboardTile[] = [];
  for (let i = 0; i < g.tiles; i++) {
    const inSheet = i % perSheet;
    out.push({
      startS: Math.round(i * g.intervalS * 1000) / 1000,
      // The last tile covers up to the end, so the cues leave no gap whatever the duration.
      endS: Math.round((i === g.tiles - 1 ? durationS : Math.min((i + 1) * g.intervalS, durationS)) * 1000) / 1000,
      sheet: sheetName(Math.floor(i / perSheet)),
      x: (inSheet % g.cols) * g.tileWidth,
      y: Math.floor(inSheet / g.cols) * g.tileHeight,
    });
  }
  return out;
}

/** WebVTT timestamp hh:mm:ss.mmm. */
export function vttTime(s: number): string {
  const ms = Math.round(s * 1000);
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const sec = Math.floor((ms % 60_000) / 1000);
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${pad(h)}:${pad(m)}:${pad(sec)}.${pad(ms % 1000, 3)}`;
}

/** The VTT, cues contiguous from 0 to the duration; sheet URIs relative to the VTT (`<sheetPrefix><sheet>`). */
export function storyboardVtt(g: StoryboardGeometry, durationS: number, sheetPrefix = ""): string {
  const lines = ["WEBVTT", ""];
  for (const t of storyboardTiles(g, durationS)) {
    if (t.endS <= t.startS) continue;
    lines.push(`${vttTime(t.startS)} --> ${vttTime(t.endS)}`, `${sheetPrefix}${t.sheet}#xywh=${t.x},${t.y},${g.tileWidth},${g.tileHeight}`, "");
  }
  return lines.join("\n");
}

export interface StoryboardJson {
  duration: number;
  interval: number;
  tile_width: number;
  tile_height: number;
  columns: number;
  rows: number;
  sheets: { url: string; tiles: { start: number; x: number; y: number }[] }[];
}

export function storyboardJson(g: StoryboardGeometry, durationS: number, sheetPrefix = ""): StoryboardJson {
  const sheets = new Map<string, { start: number; x: number; y: number }[]>();
  for (const t of storyboardTiles(g, durationS)) {
    const list = sheets.get(t.sheet) ?? [];
    list.push({ start: t.startS, x: t.x, y: t.y });
    sheets.set(t.sheet, list);
  }
  return {
    duration: durationS,
    interval: g.intervalS,
    tile_width: g.tileWidth,
    tile_height: g.tileHeight,
    columns: g.cols,
    rows: g.rows,
    sheets: [...sheets].map(([sheet, tiles]) => ({ url: `${sheetPrefix}${sheet}`, tiles })),
  };
}
