// Unit tests of the room's pure parts: token bucket, room info ordering, presence aggregation, flush framing.
import { describe, expect, it } from "vitest";
import { makeEvent } from "../../../shared/envelope.ts";
import { serverFrame } from "../../../shared/protocol/room.ts";
import { FrameCoalescer, MAX_FLUSH_CHARS, serializeFlush } from "./coalescer.ts";
import { presenceFromStates } from "./presence.ts";
import { ReactionAggregator } from "./reactions.ts";
import { newBucket, take } from "./rate-limit.ts";
import type { RoomEvent } from "./room-events.ts";
import { nextRoomInfo } from "../../../shared/protocol/stream-state.ts";
import { splitPresence } from "./room.ts";

describe("token bucket", () => {
  it("allows the burst, then refills at the rate, and scores refusals minus acceptances", () => {
    const b = newBucket(3, 0);
    expect([take(b, 0, 2, 3), take(b, 0, 2, 3), take(b, 0, 2, 3)].every((r) => r.ok)).toBe(true);
    expect(take(b, 0, 2, 3)).toEqual({ ok: false, retryAfterMs: 500, strikes: 1 });
    expect(take(b, 100, 2, 3)).toMatchObject({ ok: false, strikes: 2 });
    expect(take(b, 500, 2, 3)).toEqual({ ok: true });
    expect(b.strikes).toBe(1);
  });

  it("lets the score climb for a client sending at several times the rate, though some frames get through", () => {
    const b = newBucket(2, 0);
    let t = 0;
    let last = { ok: true } as ReturnType<typeof take>;
    // 10 frames/s against a 2/s bucket for 10 s.
    for (let i = 0; i < 100; i++, t += 100) last = take(b, t, 2, 2);
    expect(b.strikes).toBeGreaterThan(50);
    expect(last.ok).toBe(false);
  });
});

describe("room info from stream events", () => {
  const ev = (type: "stream.started" | "stream.live" | "stream.ended", time: string, extra: Record<string, unknown> = {}) => {
    const data = {
      "stream.started": { streamId: "s1", nodeId: "n", app: "live" },
      "stream.live": { streamId: "s1", nodeId: "n", playbackUrl: "https://cdn.example/s1.m3u8", renditions: [] },
      "stream.ended": { streamId: "s1", nodeId: "n", durationS: 60, reason: "publisher-left" },
    }[type];
    return makeEvent(type, { ...data, ...extra } as never, { source: "t", subject: "stream/s1", time: new Date(time) }) as RoomEvent;
  };

  it("follows started -> live -> ended and keeps the playback URL", () => {
    let info = nextRoomInfo({ roomId: "r" }, ev("stream.started", "2026-01-01T00:00:00Z"));
    expect(info.stream?.status).toBe("starting");
    info = nextRoomInfo(info, ev("stream.live", "2026-01-01T00:00:02Z"));
    expect(info.stream).toMatchObject({ status: "live", playbackUrl: "https://cdn.example/s1.m3u8" });
    info = nextRoomInfo(info, ev("stream.ended", "2026-01-01T00:10:00Z", { vodUrl: "https://cdn.example/vod.m3u8" }));
    expect(info.stream).toMatchObject({ status: "ended", playbackUrl: "https://cdn.example/s1.m3u8", vodUrl: "https://cdn.example/vod.m3u8" });
  });

  it("ignores an event older than the state it would replace (out-of-order delivery)", () => {
    const live = nextRoomInfo({ roomId: "r" }, ev("stream.live", "2026-01-01T00:00:02Z"));
    expect(nextRoomInfo(live, ev("stream.started", "2026-01-01T00:00:00Z"))).toEqual(live);
  });
});

describe("presence aggregation", () => {
  it("counts connections per user and takes the newest state", () => {
    const u = (userId: string) => ({ userId, role: "member" as const });
    const map = presenceFromStates([
      { user: u("a"), state: { s: 1 }, stateAt: 1 },
      { user: u("a"), state: { s: 2 }, stateAt: 5 },
      { user: u("b"), state: {}, stateAt: 3 },
    ]);
    expect(map.get("a")?.entry).toEqual({ userId: "a", role: "member", connections: 2, state: { s: 2 } });
    expect(map.get("b")?.entry.connections).toBe(1);
  });
});

describe("flush framing", () => {
  it("sends a lone frame bare and several as one batch that matches the protocol", () => {
    const one = serializeFlush([{ type: "leave", userId: "a" }]);
    expect(JSON.parse(one)).toEqual({ type: "leave", userId: "a" });
    const many = JSON.parse(serializeFlush([{ type: "leave", userId: "a" }, { type: "reactions", counts: { "🔥": 2 }, at: 1 }]));
    expect(serverFrame.parse(many)).toEqual({ type: "batch", frames: [{ type: "leave", userId: "a" }, { type: "reactions", counts: { "🔥": 2 }, at: 1 }] });
  });

  it("cuts a flush early instead of building a message near the platform's size limit", () => {
    const sent: string[] = [];
    const coalescer = new FrameCoalescer(10_000, (text) => sent.push(text));
    const text = "x".repeat(4000);
    const count = Math.ceil((3 * MAX_FLUSH_CHARS) / text.length);
    for (let i = 0; i < count; i++) coalescer.push({ type: "comment", userId: "a", text, at: i });
    coalescer.flush();
    expect(sent.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...sent.map((s) => s.length))).toBeLessThanOrEqual(MAX_FLUSH_CHARS + 200);
    const frames = sent.flatMap((s) => { const f = serverFrame.parse(JSON.parse(s)); return f.type === "batch" ? f.frames : [f]; });
    expect(frames.map((f) => (f.type === "comment" ? f.at : -1))).toEqual(Array.from({ length: count }, (_, i) => i));
  });
});

describe("welcome presence split", () => {
  it("keeps the welcome within its budget and hands the rest over in order", () => {
    const entries = Array.from({ length: 100 }, (_, i) => ({ userId: `u${i}`, role: "member" as const, connections: 1, state: { pad: "x".repeat(100) } }));
    const { head, rest } = splitPresence(entries, 2000);
    expect(head.length).toBeGreaterThan(0);
    expect(JSON.stringify(head).length).toBeLessThanOrEqual(2000);
    expect([...head, ...rest]).toEqual(entries);
    expect(splitPresence(entries.slice(0, 3))).toEqual({ head: entries.slice(0, 3), rest: [] });
  });
});

describe("ReactionAggregator", () => {
  it("turns every click of one window into one frame of counts", async () => {
    const frames: Record<string, number>[] = [];
    const aggregator = new ReactionAggregator(5, (counts) => frames.push(counts));
    for (let i = 0; i < 6; i++) aggregator.add(i < 5 ? "🔥" : "👏");
    // All six clicks were added in one turn: the window's timer cannot have fired in between.
    expect(frames).toEqual([]);
    await new Promise<void>((resolve) => {
      const poll = () => (frames.length > 0 ? resolve() : setTimeout(poll, 5));
      poll();
    });
    expect(frames).toEqual([{ "🔥": 5, "👏": 1 }]);
    aggregator.add("🔥");
    aggregator.flush();
    expect(frames).toEqual([{ "🔥": 5, "👏": 1 }, { "🔥": 1 }]);
  });
});
