import { describe, expect, it } from "vitest";
import { parseFfmpegMasterCodecs, parseFfmpegPlaylist, type PlaylistSegment, renderMasterPlaylist, renderMediaPlaylist, targetDuration } from "./playlists.ts";
import { parsePlaylist } from "../../../test/helpers/hls.ts";

const seg = (epoch: number, i: number, durationS = 2, discontinuity = false): PlaylistSegment => ({ uri: `e${epoch}-${i}.m4s`, durationS, map: `e${epoch}-init.mp4`, discontinuity });

describe("renderMediaPlaylist", () => {
  it("renders a live playlist without ENDLIST, fMP4 map and independent segments", () => {
    const text = renderMediaPlaylist([seg(0, 0), seg(0, 1)], { targetS: 2, kind: "live", window: 10, ended: false });
    expect(text).toContain("#EXT-X-INDEPENDENT-SEGMENTS");
    expect(text).toContain('#EXT-X-MAP:URI="e0-init.mp4"');
    expect(text).not.toContain("#EXT-X-ENDLIST");
    const m = parsePlaylist(text);
    expect(m.targetDuration).toBe(2);
    expect(m.mediaSequence).toBe(0);
    expect(m.segments.map((s: { uri: string }) => s.uri)).toEqual(["e0-0.m4s", "e0-1.m4s"]);
    expect(m.endList).toBeUndefined();
  });

  it("marks a new FFmpeg run with a discontinuity and a new init segment", () => {
    const text = renderMediaPlaylist([seg(0, 0), seg(0, 1, 1.5), seg(1, 0, 2, true), seg(1, 1)], { targetS: 2, kind: "live", ended: true });
    const m = parsePlaylist(text);
    expect(m.segments.map((s: { discontinuity?: boolean }) => Boolean(s.discontinuity))).toEqual([false, false, true, false]);
    expect(m.segments[2].map.uri).toBe("e1-init.mp4");
    expect(m.endList).toBe(true);
    expect(text.match(/#EXT-X-MAP/g)).toHaveLength(2);
  });

  it("slides the live window, keeping media and discontinuity sequence numbers right", () => {
    const all = [seg(0, 0), seg(0, 1), seg(1, 0, 2, true), seg(1, 1), seg(2, 0, 2, true), seg(2, 1)];
    const m = parsePlaylist(renderMediaPlaylist(all, { targetS: 2, kind: "live", window: 3, ended: false }));
    expect(m.mediaSequence).toBe(3);
    expect(m.discontinuitySequence).toBe(1); // the one before e1-0 slid out
    expect(m.segments.map((s: { uri: string }) => s.uri)).toEqual(["e1-1.m4s", "e2-0.m4s", "e2-1.m4s"]);
    expect(m.segments[0].map.uri).toBe("e1-init.mp4"); // the window starts with its own map
    // a window starting on a discontinuous segment counts it in the sequence instead of tagging it
    const m2 = parsePlaylist(renderMediaPlaylist(all, { targetS: 2, kind: "live", window: 2, ended: false }));
    expect(m2.discontinuitySequence).toBe(2);
    expect(Boolean(m2.segments[0].discontinuity)).toBe(false);
  });

  it("stamps every segment with the wall-clock time its first frame was sent (EXT-X-PROGRAM-DATE-TIME)", () => {
    const t0 = Date.UTC(2026, 10, 30, 20, 0, 0);
    const all = [{ ...seg(0, 0), programDateTimeMs: t0 }, { ...seg(0, 1), programDateTimeMs: t0 + 2000 }, { ...seg(1, 0, 2, true), programDateTimeMs: t0 + 9500 }];
    const text = renderMediaPlaylist(all, { targetS: 2, kind: "live", window: 10, ended: false });
    expect(text.match(/#EXT-X-PROGRAM-DATE-TIME:.*/g)).toEqual(["#EXT-X-PROGRAM-DATE-TIME:2026-11-30T20:00:00.000Z", "#EXT-X-PROGRAM-DATE-TIME:2026-11-30T20:00:02.000Z", "#EXT-X-PROGRAM-DATE-TIME:2026-11-30T20:00:09.500Z"]);
    const m = parsePlaylist(text);
    expect(m.segments.map((s: { programDateTime: number }) => s.programDateTime)).toEqual([t0, t0 + 2000, t0 + 9500]);
    // each tag sits right before its segment's EXTINF (after the discontinuity and map of a new run)
    expect(text).toMatch(/#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="e1-init.mp4"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-30T20:00:09.500Z\n#EXTINF:2.000,\ne1-0.m4s/);
    // segments without a known time get no tag
    expect(renderMediaPlaylist([seg(0, 0)], { targetS: 2, kind: "live", ended: false })).not.toContain("PROGRAM-DATE-TIME");
  });

  it("lets players sit three target durations from the live edge (HOLD-BACK, the spec's minimum), live only", () => {
    const live = renderMediaPlaylist([seg(0, 0, 1), seg(0, 1, 1)], { targetS: 1, kind: "live", window: 10, ended: false });
    expect(live).toContain("#EXT-X-SERVER-CONTROL:HOLD-BACK=3.000\n");
    expect(parsePlaylist(live).serverControl).toMatchObject({ holdBack: 3 });
    // a longer segment raises TARGETDURATION, and the hold-back with it
    expect(renderMediaPlaylist([seg(0, 0, 2), seg(0, 1, 2.6)], { targetS: 2, kind: "live", ended: false })).toContain("HOLD-BACK=9.000");
    expect(renderMediaPlaylist([seg(0, 0)], { targetS: 2, kind: "live", ended: true })).not.toContain("SERVER-CONTROL");
    expect(renderMediaPlaylist([seg(0, 0)], { targetS: 2, kind: "vod", ended: true })).not.toContain("SERVER-CONTROL");
  });

  it("renders a VOD playlist of everything, with PLAYLIST-TYPE and ENDLIST", () => {
    const all = Array.from({ length: 40 }, (_, i) => seg(0, i));
    const m = parsePlaylist(renderMediaPlaylist(all, { targetS: 2, kind: "vod", window: 5, ended: true }));
    expect(m.playlistType).toBe("VOD");
    expect(m.segments).toHaveLength(40);
    expect(m.endList).toBe(true);
  });

  it("renders an EVENT playlist of everything that starts at the beginning, ENDLIST only once ended", () => {
    const all = Array.from({ length: 20 }, (_, i) => seg(0, i, 4));
    const growing = renderMediaPlaylist(all, { targetS: 4, kind: "event", window: 6, ended: false });
    expect(growing).toContain("#EXT-X-START:TIME-OFFSET=0,PRECISE=YES");
    const m = parsePlaylist(growing);
    expect(m.playlistType).toBe("EVENT");
    expect(m.segments).toHaveLength(20);
    expect(m.mediaSequence).toBe(0);
    expect(m.endList).toBeUndefined();
    expect(parsePlaylist(renderMediaPlaylist(all, { targetS: 4, kind: "event", ended: true })).endList).toBe(true);
  });

  it("raises TARGETDURATION to cover a long segment", () => {
    expect(targetDuration([seg(0, 0, 2.4), seg(0, 1, 3.6)], 2)).toBe(4);
    expect(targetDuration([seg(0, 0, 2.4)], 2)).toBe(2);
  });
});

describe("renderMasterPlaylist", () => {
  it("lists variants with BANDWIDTH, AVERAGE-BANDWIDTH, RESOLUTION, FRAME-RATE and CODECS", () => {
    const text = renderMasterPlaylist([
      { uri: "360p/index.m3u8", bandwidth: 500_000, averageBandwidth: 450_000, width: 640, height: 360, frameRate: 30, codecs: "avc1.64001e,mp4a.40.2" },
      { uri: "720p/index.m3u8", bandwidth: 3_500_000, averageBandwidth: 3_200_000, width: 1280, height: 720, frameRate: 30, codecs: "avc1.64001f,mp4a.40.2" },
    ]);
    expect(text).toContain("#EXT-X-INDEPENDENT-SEGMENTS");
    expect(text).toContain("AVERAGE-BANDWIDTH=3200000");
    expect(text).toContain("FRAME-RATE=30.000");
    const m = parsePlaylist(text);
    expect(m.playlists.map((p: { uri: string }) => p.uri)).toEqual(["720p/index.m3u8", "360p/index.m3u8"]);
    expect(m.playlists[0].attributes).toMatchObject({ BANDWIDTH: 3_500_000, RESOLUTION: { width: 1280, height: 720 }, CODECS: "avc1.64001f,mp4a.40.2" });
  });

  it("lists a separate audio rendition as EXT-X-MEDIA and points every variant at its group", () => {
    const text = renderMasterPlaylist(
      [{ uri: "360p/index.m3u8", bandwidth: 600_000, averageBandwidth: 520_000, width: 640, height: 360, frameRate: 30, codecs: "avc1.64001e,mp4a.40.2", audioGroup: "aud" }],
      [{ groupId: "aud", name: "audio", uri: "audio/index.m3u8", channels: 2 }],
    );
    const m = parsePlaylist(text);
    expect(m.mediaGroups.AUDIO.aud.audio).toMatchObject({ uri: "audio/index.m3u8", default: true, autoselect: true });
    expect(m.playlists[0].attributes.AUDIO).toBe("aud");
    expect(text.indexOf("#EXT-X-MEDIA")).toBeLessThan(text.indexOf("#EXT-X-STREAM-INF"));
  });

  it("omits RESOLUTION and FRAME-RATE for audio-only", () => {
    const text = renderMasterPlaylist([{ uri: "audio/index.m3u8", bandwidth: 134_400, averageBandwidth: 134_400, codecs: "mp4a.40.2" }]);
    expect(text).not.toContain("RESOLUTION");
    expect(text).not.toContain("FRAME-RATE");
  });
});

describe("FFmpeg's own playlists", () => {
  it("reads entries with absolute indexes from a sliding playlist", () => {
    const text = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:4\n#EXT-X-MAP:URI=\"init_0.mp4\"\n#EXTINF:2.000000,\nseg_4.m4s\n#EXTINF:1.500000,\nseg_5.m4s\n#EXT-X-ENDLIST\n";
    expect(parseFfmpegPlaylist(text)).toEqual({
      entries: [
        { index: 4, uri: "seg_4.m4s", durationS: 2, map: "init_0.mp4" },
        { index: 5, uri: "seg_5.m4s", durationS: 1.5, map: "init_0.mp4" },
      ],
      ended: true,
    });
  });
  it("reads CODECS per variant from FFmpeg's master", () => {
    const text = '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2"\nsource/index.m3u8\n\n#EXT-X-STREAM-INF:BANDWIDTH=2,CODECS="mp4a.40.2"\naudio/index.m3u8\n';
    expect([...parseFfmpegMasterCodecs(text)]).toEqual([
      ["source", "avc1.64001e,mp4a.40.2"],
      ["audio", "mp4a.40.2"],
    ]);
  });
});
