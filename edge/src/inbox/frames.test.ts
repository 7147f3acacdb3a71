import { describe, expect, it } from "vitest";
import { makeEvent } from "../../../shared/envelope.ts";
import { inboxEffectOf } from "./events.ts";
import { parseClientFrame } from "./frames.ts";

describe("parseClientFrame", () => {
  const max = 256;

  it("accepts the documented frames", () => {
    expect(parseClientFrame(JSON.stringify({ type: "read", ids: ["a", "b"] }), max)).toEqual({ ok: true, frame: { type: "read", ids: ["a", "b"] } });
    expect(parseClientFrame(JSON.stringify({ type: "read", all: true }), max)).toEqual({ ok: true, frame: { type: "read", all: true } });
    expect(parseClientFrame(JSON.stringify({ type: "read", upTo: 7 }), max)).toEqual({ ok: true, frame: { type: "read", upTo: 7 } });
    expect(parseClientFrame(JSON.stringify({ type: "list", before: 10, limit: 5, unreadOnly: true }), max)).toMatchObject({ ok: true });
  });

  it.each([
    ["binary frame", new ArrayBuffer(4), "bad_json"],
    ["not JSON", "{nope", "bad_json"],
    ["JSON without type", "[1,2]", "unknown_type"],
    ["unknown type", JSON.stringify({ type: "delete" }), "unknown_type"],
    ["read with two selectors", JSON.stringify({ type: "read", ids: ["a"], all: true }), "bad_frame"],
    ["read with no selector", JSON.stringify({ type: "read" }), "bad_frame"],
    ["read with empty ids", JSON.stringify({ type: "read", ids: [] }), "bad_frame"],
    ["read with a non-integer seq", JSON.stringify({ type: "read", upTo: 1.5 }), "bad_frame"],
    ["list over the page limit", JSON.stringify({ type: "list", limit: 1000 }), "bad_frame"],
    ["unknown field", JSON.stringify({ type: "list", sneaky: 1 }), "bad_frame"],
    ["oversized frame", JSON.stringify({ type: "read", ids: ["x".repeat(300)] }), "frame_too_large"],
    ["oversized in UTF-8 only", JSON.stringify({ type: "read", ids: ["é".repeat(120)] }), "frame_too_large"],
  ])("refuses %s with a clear error code", (_what, message, code) => {
    const parsed = parseClientFrame(message, max);
    expect(parsed).toMatchObject({ ok: false, code });
    if (!parsed.ok) expect(parsed.message.length).toBeGreaterThan(5);
  });
});

describe("inboxEffectOf", () => {
  const opts = { source: "test", subject: "user/alice" };

  it("stores notification.requested for its user, with the event id kept", () => {
    const event = makeEvent("notification.requested", { notificationId: "n1", userId: "alice", title: "Hi", url: "https://x.test/a" }, opts);
    expect(inboxEffectOf(event, "alice")).toEqual({
      ok: true,
      kind: "store",
      notification: { id: "n1", kind: "notification", title: "Hi", url: "https://x.test/a", eventId: event.id },
    });
  });

  it("stores media.ready and media.failed for the owner, named by the event id", () => {
    const ready = makeEvent("media.ready", { mediaId: "m1", ownerId: "alice", playbackUrl: "https://cdn.test/m1.m3u8", durationS: 12 }, opts);
    expect(inboxEffectOf(ready, "alice")).toMatchObject({ ok: true, kind: "store", notification: { id: ready.id, kind: "media.ready", url: "https://cdn.test/m1.m3u8", data: { mediaId: "m1" } } });
    const failed = makeEvent("media.failed", { mediaId: "m1", ownerId: "alice", reason: "corrupt input" }, opts);
    expect(inboxEffectOf(failed, "alice")).toMatchObject({ ok: true, kind: "store", notification: { kind: "media.failed", body: "corrupt input" } });
  });

  it("turns media.progress into a live-only frame", () => {
    const progress = makeEvent("media.progress", { mediaId: "m1", ownerId: "alice", stage: "transcode", percent: 40 }, opts);
    expect(inboxEffectOf(progress, "alice")).toEqual({ ok: true, kind: "live", frame: { type: "progress", mediaId: "m1", stage: "transcode", percent: 40 } });
  });

  it("refuses events for someone else, without an owner, or of other types", () => {
    const other = makeEvent("notification.requested", { notificationId: "n1", userId: "bob", title: "Hi" }, opts);
    expect(inboxEffectOf(other, "alice")).toMatchObject({ ok: false, error: expect.stringContaining("'bob'") });
    const ownerless = makeEvent("media.ready", { mediaId: "m1", playbackUrl: "https://cdn.test/m1.m3u8", durationS: 1 }, opts);
    expect(inboxEffectOf(ownerless, "alice")).toMatchObject({ ok: false, error: expect.stringContaining("without ownerId") });
    const live = makeEvent("stream.live", { streamId: "s1", nodeId: "n", playbackUrl: "https://cdn.test/s1.m3u8", renditions: [] }, opts);
    expect(inboxEffectOf(live, "alice")).toMatchObject({ ok: false, error: expect.stringContaining("does not take 'stream.live'") });
  });
});
