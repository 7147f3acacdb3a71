// The room's stream state across interruptions, from the events the media node really emits for each:
//   broadcast:               stream.started{resumed:false} -> stream.live (once) -> stream.ended -> media.ready
//   reconnect within grace:  stream.started{resumed:true}, no second stream.live (same playlists, same URL)
//   FFmpeg crash + restart:  nothing (the playlists continue after a discontinuity)
//   FFmpeg keeps crashing:   stream.ended{reason:"transcoder-failed"}
// Pure tests of the reduction (every delivery order), then a late joiner's welcome in a real room.
import { describe, expect, it } from "vitest";
import { makeEvent } from "../../../shared/envelope.ts";
import type { RoomInfo } from "../../../shared/protocol/room.ts";
import type { RoomEvent } from "./room-events.ts";
import { nextRoomInfo } from "../../../shared/protocol/stream-state.ts";
import { env, join, newRoom } from "../../test/clients.ts";

const T0 = Date.parse("2026-01-01T00:00:00Z");
const URL_A = "https://cdn.example/live/s1/b1/master.m3u8";
const URL_B = "https://cdn.example/live/s1/b2/master.m3u8";
const VOD_A = "https://cdn.example/live/s1/b1/vod.m3u8";

function at(s: number): Date {
  return new Date(T0 + s * 1000);
}

const ev = {
  started: (s: number, resumed = false, roomId?: string) => makeEvent("stream.started", { streamId: "s1", roomId, nodeId: "n", app: "live", resumed }, { source: "media-node/n", subject: "stream/s1", time: at(s) }) as RoomEvent,
  live: (s: number, playbackUrl = URL_A, roomId?: string) => makeEvent("stream.live", { streamId: "s1", roomId, nodeId: "n", playbackUrl, renditions: [] }, { source: "media-node/n", subject: "stream/s1", time: at(s) }) as RoomEvent,
  ended: (s: number, reason: "publisher-left" | "transcoder-failed" = "publisher-left", vodUrl?: string, roomId?: string) =>
    makeEvent("stream.ended", { streamId: "s1", roomId, nodeId: "n", durationS: s, reason, ...(vodUrl ? { vodUrl } : {}) }, { source: "media-node/n", subject: "stream/s1", time: at(s) }) as RoomEvent,
};

const fold = (events: RoomEvent[]): RoomInfo["stream"] => events.reduce((info, e) => nextRoomInfo(info, e), { roomId: "r" } as RoomInfo).stream;

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest]));
}

const rendition = (name: string) => ({ name, bandwidth: 1000, codecs: "avc1.64001f" });
const degraded = (s: number, kept: string[]) =>
  makeEvent("stream.degraded", { streamId: "s1", nodeId: "n", renditions: kept.map(rendition), shed: ["1080p"], speed: 0.7 }, { source: "media-node/n", subject: "stream/s1", time: at(s) }) as RoomEvent;

describe("room stream state (pure)", () => {
  it("shows the renditions a live stream kept after the node shed rungs, in any delivery order", () => {
    expect(fold([ev.started(0), ev.live(3), degraded(10, ["720p", "480p", "audio"])])).toEqual({ streamId: "s1", status: "live", playbackUrl: URL_A, renditions: ["720p", "480p", "audio"], startedAt: T0, updatedAt: T0 + 10_000 });
    for (const order of permutations([ev.started(0), ev.live(3), degraded(10, ["720p", "480p", "audio"]), degraded(20, ["480p", "audio"])])) {
      expect(fold(order), order.map((e) => e.type).join(",")).toMatchObject({ status: "live", playbackUrl: URL_A, renditions: ["480p", "audio"] });
    }
    // a degradation says nothing about an ended broadcast, and a new broadcast starts with every rendition again
    expect(fold([ev.started(0), ev.live(3), ev.ended(30), degraded(10, ["480p"])])).not.toHaveProperty("renditions");
    expect(fold([ev.started(0), ev.live(3), degraded(10, ["480p"]), ev.ended(30), ev.started(40), ev.live(43, URL_B)])).toEqual({ streamId: "s1", status: "live", playbackUrl: URL_B, startedAt: T0 + 40_000, updatedAt: T0 + 43_000 });
  });

  it("a broadcaster's reconnect within the grace window keeps the stream live with its playback URL", () => {
    expect(fold([ev.started(0), ev.live(3), ev.started(60, true)])).toEqual({ streamId: "s1", status: "live", playbackUrl: URL_A, startedAt: T0, updatedAt: T0 + 3000 });
    // several reconnects
    expect(fold([ev.started(0), ev.live(3), ev.started(60, true), ev.started(90, true), ev.started(95, true)])).toMatchObject({ status: "live", playbackUrl: URL_A });
  });

  it("reaches the same state whatever order the reconnect's events arrive in", () => {
    for (const order of permutations([ev.started(0), ev.live(3), ev.started(60, true)])) {
      expect(fold(order), order.map((e) => e.type).join(",")).toMatchObject({ status: "live", playbackUrl: URL_A });
    }
    for (const order of permutations([ev.started(0), ev.live(3), ev.started(60, true), ev.ended(200, "publisher-left", VOD_A)])) {
      expect(fold(order), order.map((e) => e.type).join(",")).toMatchObject({ status: "ended", vodUrl: VOD_A });
    }
  });

  it("a reconnect while still starting stays starting until the broadcast's one stream.live", () => {
    expect(fold([ev.started(0), ev.started(2, true)])).toMatchObject({ status: "starting", startedAt: T0 });
    expect(fold([ev.started(0), ev.started(2, true), ev.live(5)])).toMatchObject({ status: "live", playbackUrl: URL_A });
  });

  it("a resume whose broadcast start the room never saw is starting, and that broadcast's earlier live still applies", () => {
    expect(fold([ev.started(60, true)])).toEqual({ streamId: "s1", status: "starting", updatedAt: T0 + 60_000 });
    expect(fold([ev.started(60, true), ev.live(3)])).toMatchObject({ status: "live", playbackUrl: URL_A });
  });

  it("an FFmpeg crash and restart emits nothing, so the stream stays live; giving up ends it", () => {
    expect(fold([ev.started(0), ev.live(3)])).toMatchObject({ status: "live", playbackUrl: URL_A });
    expect(fold([ev.started(0), ev.live(3), ev.ended(40, "transcoder-failed")])).toMatchObject({ status: "ended", playbackUrl: URL_A });
  });

  it("a resume older than the end changes nothing (late delivery)", () => {
    const ended = fold([ev.started(0), ev.live(3), ev.ended(200, "publisher-left", VOD_A)]);
    expect(fold([ev.started(0), ev.live(3), ev.ended(200, "publisher-left", VOD_A), ev.started(60, true)])).toEqual(ended);
  });

  it("a new broadcast after the end starts clean: no earlier playback or VOD URL, and the earlier live cannot come back", () => {
    const next = fold([ev.started(0), ev.live(3), ev.ended(200, "publisher-left", VOD_A), ev.started(300)]);
    expect(next).toEqual({ streamId: "s1", status: "starting", startedAt: T0 + 300_000, updatedAt: T0 + 300_000 });
    expect(fold([ev.started(0), ev.ended(200, "publisher-left", VOD_A), ev.started(300), ev.live(3)])).toEqual(next);
    expect(fold([ev.started(0), ev.live(3), ev.ended(200, "publisher-left", VOD_A), ev.started(300), ev.live(303, URL_B)])).toMatchObject({ status: "live", playbackUrl: URL_B });
    // a live after an older end, the new broadcast's start not seen yet: the old VOD does not stick to it
    const missedStart = fold([ev.started(0), ev.live(3), ev.ended(200, "publisher-left", VOD_A), ev.live(303, URL_B)]);
    expect(missedStart).toEqual({ streamId: "s1", status: "live", playbackUrl: URL_B, updatedAt: T0 + 303_000 });
  });
});

describe("late joiner's welcome after each interruption (real room)", () => {
  async function welcomeAfter(events: (roomId: string) => RoomEvent[]): Promise<RoomInfo["stream"]> {
    const room = newRoom("stream-state");
    const outcomes = await env.Room.getByName(room).applyEvents(events(room));
    expect(outcomes.every((o) => o.applied)).toBe(true);
    const late = await join(room, "late-joiner", { role: "viewer" });
    late.close();
    return late.welcome.room.stream;
  }
  // event times are "now": an interruption two minutes ago and a welcome now
  const now = (Date.now() - T0) / 1000 - 300;

  it("after the broadcaster reconnected within the grace window: live, with the playback URL", async () => {
    const stream = await welcomeAfter((r) => [ev.started(now, false, r), ev.live(now + 3, URL_A, r), ev.started(now + 180, true, r)]);
    expect(stream).toMatchObject({ streamId: "s1", status: "live", playbackUrl: URL_A });
  });

  it("after a reconnect delivered before the broadcast's live event: live", async () => {
    const stream = await welcomeAfter((r) => [ev.started(now, false, r), ev.started(now + 180, true, r), ev.live(now + 3, URL_A, r)]);
    expect(stream).toMatchObject({ status: "live", playbackUrl: URL_A });
  });

  it("after a reconnect during startup: live once the broadcast's stream.live came", async () => {
    const stream = await welcomeAfter((r) => [ev.started(now, false, r), ev.started(now + 1, true, r), ev.live(now + 4, URL_A, r)]);
    expect(stream).toMatchObject({ status: "live", playbackUrl: URL_A });
  });

  it("after an FFmpeg crash and restart (no events): live; after FFmpeg gave up: ended", async () => {
    expect(await welcomeAfter((r) => [ev.started(now, false, r), ev.live(now + 3, URL_A, r)])).toMatchObject({ status: "live", playbackUrl: URL_A });
    expect(await welcomeAfter((r) => [ev.started(now, false, r), ev.live(now + 3, URL_A, r), ev.ended(now + 40, "transcoder-failed", undefined, r)])).toMatchObject({ status: "ended" });
  });

  it("after the grace window ran out and the broadcaster came back as a new broadcast: its own URL only", async () => {
    const stream = await welcomeAfter((r) => [
      ev.started(now, false, r),
      ev.live(now + 3, URL_A, r),
      ev.ended(now + 100, "publisher-left", VOD_A, r),
      ev.started(now + 150, false, r),
      ev.live(now + 153, URL_B, r),
    ]);
    expect(stream).toEqual({ streamId: "s1", status: "live", playbackUrl: URL_B, startedAt: T0 + (now + 150) * 1000, updatedAt: T0 + (now + 153) * 1000 });
  });
});
