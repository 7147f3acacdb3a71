import { describe, expect, it } from "vitest";
import { makeEvent } from "../../../shared/envelope.ts";
import { parseJob, vodEvent, vodEventId } from "./job.ts";

const uploaded = (data: Partial<{ mediaId: string; key: string }> = {}) =>
  JSON.stringify(makeEvent("media.uploaded", { mediaId: "vid_1", ownerId: "alice", key: "uploads/vid_1/source", size: 10, ...data }, { source: "edge", subject: "media/vid_1" }));

describe("parseJob", () => {
  it("takes a media.uploaded event", () => {
    const r = parseJob(uploaded());
    expect(r).toMatchObject({ ok: true, job: { videoId: "vid_1", ownerId: "alice", sourceKey: "uploads/vid_1/source", size: 10, roomId: undefined } });
  });

  it("refuses garbage, other event types, ids that cannot name objects and bad keys, with the ids when known", () => {
    expect(parseJob("{nope")).toMatchObject({ ok: false, reason: expect.stringMatching(/not a job/) });
    const other = JSON.stringify(makeEvent("media.progress", { mediaId: "m", stage: "probe", percent: 1 }, { source: "x", subject: "y" }));
    expect(parseJob(other)).toMatchObject({ ok: false, reason: "not a job: a media.progress event" });
    expect(parseJob(uploaded({ mediaId: "../etc" }))).toMatchObject({ ok: false, videoId: "../etc", ownerId: "alice", reason: expect.stringMatching(/cannot name stored objects/) });
    expect(parseJob(uploaded({ key: "/abs/path" }))).toMatchObject({ ok: false, videoId: "vid_1", reason: expect.stringMatching(/source key refused/) });
  });
});

describe("vod event ids", () => {
  it("are derived from the video, so a job processed twice announces the same event", () => {
    expect(vodEventId("vid_1", "ready")).toBe(vodEventId("vid_1", "ready"));
    expect(vodEventId("vid_1", "ready")).not.toBe(vodEventId("vid_2", "ready"));
    expect(vodEventId("vid_1", "ready")).not.toBe(vodEventId("vid_1", "failed"));
    const a = vodEvent("media.failed", { mediaId: "vid_1", reason: "x" }, { nodeId: "n1", videoId: "vid_1" });
    const b = vodEvent("media.failed", { mediaId: "vid_1", reason: "y" }, { nodeId: "n2", videoId: "vid_1" });
    expect(a.id).toBe(b.id);
    expect(a.id).toMatch(/^[A-Za-z0-9_-]{1,128}$/);
    expect(a).toMatchObject({ source: "media-node/n1", subject: "media/vid_1" });
  });

  it("progress reports each get their own id", () => {
    const p = () => vodEvent("media.progress", { mediaId: "vid_1", stage: "transcode", percent: 5 }, { nodeId: "n", videoId: "vid_1" }).id;
    expect(p()).not.toBe(p());
  });
});
