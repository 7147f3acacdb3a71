import { describe, expect, it } from "vitest";
import { makeEvent, parseEvent } from "../envelope.ts";
import { storageKey } from "./common.ts";

describe("storage keys in events", () => {
  it("accepts the media node's keys", () => {
    for (const key of ["live/str_1/brd_2/master.m3u8", "live/str_1/brd_2/vod.m3u8", "live/s/b/720p/e0-12.m4s"]) expect(storageKey.safeParse(key).success, key).toBe(true);
  });

  it.each([
    ["a parent segment", "live/../secret.m3u8"],
    ["an absolute key", "/live/x.m3u8"],
    ["an empty segment", "live//x.m3u8"],
    ["a dot-led segment", "live/.meta.json"],
    ["a backslash", "live\\x.m3u8"],
    ["an encoded slash", "live%2Fx.m3u8"],
    ["a URL", "https://cdn.example/live/x.m3u8"],
    ["nothing", ""],
  ])("refuses %s", (_what, key) => {
    expect(storageKey.safeParse(key).success).toBe(false);
  });

  it("keeps a stream.live without keys valid, and refuses one with a bad key", () => {
    const data = { streamId: "s1", nodeId: "n", playbackUrl: "https://cdn.example/x.m3u8", renditions: [] };
    expect(parseEvent(makeEvent("stream.live", data, { source: "t", subject: "s1" })).ok).toBe(true);
    const bad = { ...makeEvent("stream.live", data, { source: "t", subject: "s1" }), data: { ...data, masterKey: "../x" } };
    expect(parseEvent(bad).ok).toBe(false);
  });
});
