import { describe, expect, it } from "vitest";
import { makeEvent } from "../../../shared/envelope.ts";
import { applyMediaEvent, outputFolderToDelete, outputPrefixOf, policyOf, type VideoRecord } from "./records.ts";

const src = { source: "media-node/n", subject: "media/v1" };
const base: VideoRecord = {
  id: "v1",
  ownerId: "alice",
  title: "t",
  filename: "f.mp4",
  size: 10,
  status: "queued",
  createdAt: 1,
  updatedAt: 1,
  uploadExpiresAt: null,
  progress: null,
  durationS: null,
  renditions: [],
  keys: {},
  failure: null,
  streamId: null,
};
const progress = (percent: number) => makeEvent("media.progress", { mediaId: "v1", ownerId: "alice", stage: "transcode", percent }, src);
const playable = makeEvent("media.playable", { mediaId: "v1", ownerId: "alice", playbackUrl: "https://x.test/m.m3u8", masterKey: "vod/v1/master.m3u8", renditions: [{ name: "360p", bandwidth: 500_000 }] }, src);
const ready = makeEvent("media.ready", { mediaId: "v1", ownerId: "alice", playbackUrl: "https://x.test/m.m3u8", durationS: 12, keys: { master: "vod/v1/master.m3u8", poster: "vod/v1/poster.jpg" } }, src);
const failed = makeEvent("media.failed", { mediaId: "v1", ownerId: "alice", stage: "probe", reason: "not a video" }, src);

function run(record: VideoRecord, ...events: Parameters<typeof applyMediaEvent>[1][]): VideoRecord {
  let r = record;
  for (const e of events) {
    const c = applyMediaEvent(r, e, 2);
    if (c.kind === "update") r = c.record;
  }
  return r;
}

describe("applyMediaEvent", () => {
  it("queued -> processing (with progress) -> playable -> ready", () => {
    expect(run(base, progress(30))).toMatchObject({ status: "processing", progress: { stage: "transcode", percent: 30 } });
    expect(run(base, progress(30), playable)).toMatchObject({ status: "playable", keys: { master: "vod/v1/master.m3u8" } });
    expect(run(base, progress(30), playable, ready)).toMatchObject({ status: "ready", progress: null, durationS: 12, keys: { poster: "vod/v1/poster.jpg" } });
  });

  it("never goes back: progress after ready, playable after ready, failed after ready change nothing", () => {
    const done = run(base, ready);
    for (const late of [progress(99), playable, failed]) expect(applyMediaEvent(done, late, 3)).toEqual({ kind: "unchanged" });
    expect(run(base, playable, progress(80))).toMatchObject({ status: "playable", progress: { percent: 80 } });
  });

  it("a failure keeps its stage and reason", () => {
    expect(run(base, progress(1), failed)).toMatchObject({ status: "failed", failure: { stage: "probe", reason: "not a video" } });
  });

  it("an unknown video is created only for a recording of a live stream", () => {
    expect(applyMediaEvent(null, ready, 5)).toEqual({ kind: "unchanged" });
    const rec = makeEvent("media.ready", { mediaId: "rec1", ownerId: "alice", streamId: "s1", playbackUrl: "https://x.test/v.m3u8", durationS: 60 }, src);
    expect(applyMediaEvent(null, rec, 5)).toMatchObject({ kind: "create", record: { id: "rec1", ownerId: "alice", status: "ready", streamId: "s1", durationS: 60 } });
  });

  it("a recording that names its playlist key keeps it as its master (played through /play), not the node's URL", () => {
    const rec = makeEvent("media.ready", { mediaId: "brd1", ownerId: "alice", streamId: "str_abc", playbackUrl: "https://node.test/live/str_abc/brd1/vod.m3u8", playlistKey: "live/str_abc/brd1/vod.m3u8", durationS: 60 }, src);
    const change = applyMediaEvent(null, rec, 5);
    expect(change).toMatchObject({ kind: "create", record: { keys: { master: "live/str_abc/brd1/vod.m3u8" }, announcedPlaybackUrl: null } });
  });
});

describe("playback facts of a record", () => {
  it("the output folder is the master playlist's; none before media.playable", () => {
    expect(outputPrefixOf(base)).toBeUndefined();
    expect(outputPrefixOf({ keys: { master: "vod/v1/master.m3u8" } })).toBe("vod/v1");
    expect(outputPrefixOf({ keys: { master: "master.m3u8" } })).toBeUndefined();
  });

  it("records stored before policies existed are public", () => {
    expect(policyOf(base)).toBe("public");
    expect(policyOf({ ...base, playbackPolicy: "signed" })).toBe("signed");
  });
});

describe("the folder DELETE /videos/:id removes", () => {
  const keys = (master?: string) => ({ id: "vid_abc", keys: master === undefined ? {} : { master } }) as Pick<VideoRecord, "id" | "keys">;
  it("is the reported folder of the master playlist when it is the video's own", () => {
    expect(outputFolderToDelete(keys("vod/vid_abc/master.m3u8"), "vod")).toBe("vod/vid_abc/");
    expect(outputFolderToDelete(keys("tenant-1/vod/vid_abc/master.m3u8"), "vod")).toBe("tenant-1/vod/vid_abc/");
  });
  it("never widens to other videos or the whole bucket on a malformed or foreign key", () => {
    for (const master of ["master.m3u8", "vod/master.m3u8", "vod/vid_other/master.m3u8", "vod/vid_abcd/master.m3u8", undefined]) {
      expect(outputFolderToDelete(keys(master), "vod"), String(master)).toBe("vod/vid_abc/");
    }
  });
});
