import { describe, expect, it } from "vitest";
import { ENVELOPE_VERSION, MAX_EVENT_BYTES, makeEvent, parseEvent, parseEventJson } from "./envelope.ts";
import { eventTypes } from "./events/index.ts";

const live = () =>
  makeEvent(
    "stream.live",
    { streamId: "cam1", nodeId: "node-a", playbackUrl: "https://cdn.example/live/cam1/master.m3u8", renditions: [{ name: "720p", width: 1280, height: 720, bandwidth: 3_000_000 }] },
    { source: "media-node/node-a", subject: "stream/cam1" },
  );

describe("event envelope", () => {
  it("builds an event with a unique sortable id, ISO time and version", () => {
    const a = live();
    const b = live();
    expect(a.id).toMatch(/^evt_[0-9A-Z]{26}$/);
    expect(a.id).not.toBe(b.id);
    expect(a.v).toBe(ENVELOPE_VERSION);
    expect(new Date(a.time).toISOString()).toBe(a.time);
  });

  it("round-trips through JSON and the checker on the other side", () => {
    const event = live();
    const parsed = parseEventJson(JSON.stringify(event));
    expect(parsed).toEqual({ ok: true, event });
  });

  it("applies schema defaults when building", () => {
    const e = makeEvent("stream.started", { streamId: "cam1", nodeId: "n", app: "live" }, { source: "s", subject: "stream/cam1" });
    expect(e.data.resumed).toBe(false);
  });

  it("refuses to build an event whose data breaks its schema", () => {
    // @ts-expect-error — playbackUrl is required
    expect(() => makeEvent("stream.live", { streamId: "cam1", nodeId: "n", renditions: [] }, { source: "s", subject: "x" })).toThrow();
  });

  it("rejects an unknown type with a clear error", () => {
    const result = parseEvent({ ...live(), type: "stream.exploded" });
    expect(result).toEqual({ ok: false, error: "unknown event type 'stream.exploded'" });
  });

  it("rejects malformed envelopes and names the field", () => {
    const { id: _id, ...noId } = live();
    const r1 = parseEvent(noId);
    expect(r1.ok).toBe(false);
    if (!r1.ok) expect(r1.error).toMatch(/malformed envelope: id/);
    const r2 = parseEvent({ ...live(), v: 2 });
    expect(r2.ok).toBe(false);
    const r3 = parseEvent({ ...live(), id: "../../etc" });
    expect(r3.ok).toBe(false);
    expect(parseEvent(null).ok).toBe(false);
    expect(parseEvent("text").ok).toBe(false);
  });

  it("rejects bad data for a known type, naming the path", () => {
    const event = { ...live(), data: { ...live().data, streamId: "../escape" } };
    const result = parseEvent(event);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(/^invalid stream.live data: streamId/);
  });

  it("rejects non-JSON and oversized bodies before parsing", () => {
    expect(parseEventJson("{nope")).toEqual({ ok: false, error: "body is not valid JSON" });
    const big = JSON.stringify({ ...live(), data: { ...live().data, pad: "x".repeat(MAX_EVENT_BYTES) } });
    expect(parseEventJson(big)).toEqual({ ok: false, error: `event larger than ${MAX_EVENT_BYTES} bytes` });
  });

  it("has one schema for every event type the design names", () => {
    expect(eventTypes.sort()).toEqual(
      [
        "chat.message",
        "media.failed",
        "media.playable",
        "media.progress",
        "media.ready",
        "media.uploaded",
        "node.heartbeat",
        "notification.requested",
        "notification.sent",
        "notification.email",
        "presence.update",
        "stream.degraded",
        "stream.ended",
        "stream.live",
        "stream.started",
        "transcription.complete",
      ].sort(),
    );
  });
});
