import { describe, expect, it } from "vitest";
import { sheetName, storyboardGeometry, storyboardJson, storyboardTiles, storyboardVtt, vttTime } from "./storyboard.ts";

describe("storyboard geometry", () => {
  it("a 60 s landscape clip: 50 tiles of 160x90 every 1.2 s on one 10x5 sheet", () => {
    expect(storyboardGeometry(60, { width: 1280, height: 720 })).toEqual({ intervalS: 1.2, tiles: 50, tileWidth: 160, tileHeight: 90, cols: 10, rows: 5, sheets: 1 });
  });

  it("the interval scales with the duration, between 1 s and 10 s", () => {
    expect(storyboardGeometry(5, { width: 640, height: 360 })).toMatchObject({ intervalS: 1, tiles: 5, cols: 5, rows: 1 });
    const long = storyboardGeometry(3600, { width: 1920, height: 1080 });
    expect(long).toMatchObject({ intervalS: 10, tiles: 360, cols: 10, rows: 10, sheets: 4 });
  });

  it("portrait pictures get portrait tiles with even sides", () => {
    expect(storyboardGeometry(30, { width: 720, height: 1280 })).toMatchObject({ tileWidth: 90, tileHeight: 160 });
    expect(storyboardGeometry(30, { width: 641, height: 359 })).toMatchObject({ tileWidth: 160, tileHeight: 90 });
  });

  it("never scales a tiny picture up", () => {
    expect(storyboardGeometry(10, { width: 96, height: 64 })).toMatchObject({ tileWidth: 96, tileHeight: 64 });
  });
});

describe("storyboard files", () => {
  const g = storyboardGeometry(250, { width: 1280, height: 720 }); // 5 s interval, 50 tiles

  it("cues are contiguous from 0 to the duration and point into the right sheet cell", () => {
    const tiles = storyboardTiles(g, 250);
    expect(tiles[0]).toEqual({ startS: 0, endS: 5, sheet: "sprite_001.jpg", x: 0, y: 0 });
    expect(tiles[11]).toMatchObject({ x: 160, y: 90 });
    for (let i = 1; i < tiles.length; i++) expect(tiles[i]!.startS).toBe(tiles[i - 1]!.endS);
    expect(tiles.at(-1)!.endS).toBe(250);
  });

  it("tiles past one sheet go to the next sheet", () => {
    const big = storyboardGeometry(2000, { width: 1280, height: 720 }); // 200 tiles, 10 s each
    const tiles = storyboardTiles(big, 2000);
    expect(tiles[99]).toMatchObject({ sheet: sheetName(0), x: 1440, y: 810 });
    expect(tiles[100]).toMatchObject({ sheet: sheetName(1), x: 0, y: 0 });
  });

  it("the last cue reaches the end even when the duration is not a multiple of the interval", () => {
    const odd = storyboardGeometry(7.4, { width: 640, height: 360 });
    const tiles = storyboardTiles(odd, 7.4);
    expect(tiles).toHaveLength(8);
    expect(tiles.at(-1)).toMatchObject({ startS: 7, endS: 7.4 });
  });

  it("renders WebVTT with media-fragment payloads", () => {
    const vtt = storyboardVtt(g, 250, "storyboard/");
    expect(vtt.startsWith("WEBVTT\n\n00:00:00.000 --> 00:00:05.000\nstoryboard/sprite_001.jpg#xywh=0,0,160,90\n")).toBe(true);
    expect(vtt).toContain("00:04:05.000 --> 00:04:10.000\nstoryboard/sprite_001.jpg#xywh=1440,360,160,90");
    expect(vttTime(3723.5)).toBe("01:02:03.500");
  });

  it("renders the same tiles as JSON, per sheet", () => {
    const json = storyboardJson(g, 250, "storyboard/");
    expect(json).toMatchObject({ duration: 250, interval: 5, tile_width: 160, tile_height: 90, columns: 10, rows: 5 });
    expect(json.sheets).toHaveLength(1);
    expect(json.sheets[0]!.url).toBe("storyboard/sprite_001.jpg");
    expect(json.sheets[0]!.tiles[12]).toEqual({ start: 60, x: 320, y: 90 });
  });
});
