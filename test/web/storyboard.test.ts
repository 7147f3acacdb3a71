import { describe, expect, it } from "vitest";
import { cueAt, parseStoryboard } from "../../web/src/storyboard.ts";

// Storyboard VTT parsing for trick-play thumbnails (pure; the page's seek-bar preview reads these cues).
const VTT = `WEBVTT

00:00:00.000 --> 00:00:05.000
sprite-0.jpg#xywh=0,0,160,90

00:00:05.000 --> 00:00:10.000
sprite-0.jpg#xywh=160,0,160,90

bad cue
00:00:10.000 --> 00:00:15.000
no-fragment.jpg

00:01:00.000 --> 00:01:05.500
https://cdn.example/other.jpg#xywh=0,90,160,90
`;

describe("storyboard VTT", () => {
  const cues = parseStoryboard(VTT, "https://cdn.example/vod/v1/storyboard.vtt");

  it("reads cues with their sprite regions, resolved against the VTT's URL, and skips malformed ones", () => {
    expect(cues).toEqual([
      { start: 0, end: 5, url: "https://cdn.example/vod/v1/sprite-0.jpg", x: 0, y: 0, w: 160, h: 90 },
      { start: 5, end: 10, url: "https://cdn.example/vod/v1/sprite-0.jpg", x: 160, y: 0, w: 160, h: 90 },
      { start: 60, end: 65.5, url: "https://cdn.example/other.jpg", x: 0, y: 90, w: 160, h: 90 },
    ]);
  });

  it("finds the cue for a time, or the last one before it in a hole", () => {
    expect(cueAt(cues, 7)?.x).toBe(160);
    expect(cueAt(cues, 30)?.start).toBe(5);
    expect(cueAt(cues, 62)?.start).toBe(60);
    expect(cueAt([], 1)).toBeUndefined();
  });

  it("returns nothing for a file that is not a storyboard", () => {
    expect(parseStoryboard("<html>not found</html>", "https://x/")).toEqual([]);
  });
});
