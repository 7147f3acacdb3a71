// An overloaded node records everything the broadcaster sent. The node's FFmpeg is made slower than real time
// by pausing it (SIGSTOP/SIGCONT from the test, holding it to half real time): a backlog builds up while the broadcaster is still sending, and
// when the broadcaster leaves, FFmpeg is still encoding it (slowly, but making progress). The node used to stop
// FFmpeg a fixed few seconds after the leave (and at once when the grace window ended), cutting the end off
// the recording without a word; now the drain lasts as long as FFmpeg progresses (MEDIA_DRAIN_MAX_S at most).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePlaylist } from "../helpers/hls.ts";
import { publishTestSource, sentSeconds } from "../helpers/ffmpeg.ts";
import type { GroupProcess } from "../helpers/process.ts";
import { type MediaFixture, startMediaFixture } from "./fixture.ts";
import { holdToSpeed } from "./throttle.ts";

describe("drain after the broadcaster leaves (real FFmpeg, slower than real time)", () => {
  let fx: MediaFixture;
  let publisher: GroupProcess | undefined;

  beforeAll(async () => {
    fx = await startMediaFixture({
      MEDIA_SEGMENT_S: "1",
      MEDIA_LADDER: "240p",
      MEDIA_SHED_BELOW_SPEED: "0",
      // the old fixed fallback was -rw_timeout + 2 s after the leave, and the end of the grace window
      MEDIA_RW_TIMEOUT_S: "1",
      MEDIA_RECONNECT_GRACE_S: "1",
    });
  });
  afterAll(async () => {
    await publisher?.kill();
    await fx?.stop();
  });

  it("records what was sent although FFmpeg was still encoding a backlog when the broadcaster left", async () => {
    const next = fx.nextSession("drain1");
    publisher = publishTestSource(`${fx.rtmpBase}/live/drain1?token=${await fx.token("drain1")}`, { size: "640x360", durationS: 8, progress: true });
    const rec = await next;
    await rec.segmentCount(1, "240p");
    const pid = rec.session.ffmpegPid!;
    // Half real time from here on: a backlog of seconds when the broadcaster leaves at 8 s, drained at the same
    // pace afterwards (progress all along, so never a stall).
    const encoded = () => rec.segmentsOf("240p").reduce((t, s) => t + s.durationS, 0);
    const slow = holdToSpeed(pid, 0.5, encoded);
    await publisher.exited;
    const sent = sentSeconds(publisher);
    const leftAt = Date.now();
    // it is really behind: the leave found it encoding, and it went on encoding after the grace window (1 s)
    await rec.whenState("waiting");
    const ended = await rec.whenEnded(170_000);
    const drainedMs = Date.now() - leftAt;
    await slow.stop();
    expect(ended.reason).toBe("publisher-left");
    expect(drainedMs, "the drain outlasted the old fixed wait").toBeGreaterThan(3000);
    const vod = parsePlaylist(new TextDecoder().decode((await fx.store.get(`${rec.session.keyBase}/240p/vod.m3u8`))!.body));
    const recorded = vod.segments.reduce((t: number, s: { duration: number }) => t + s.duration, 0);
    expect(recorded / sent, `recorded ${recorded} s of ${sent} s sent (drained ${drainedMs} ms)`).toBeGreaterThanOrEqual(0.97);
    expect(fx.logs.filter((l) => /drain bound/.test(l.msg))).toEqual([]);
  });
});
