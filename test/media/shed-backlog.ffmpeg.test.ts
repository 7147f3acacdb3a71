// Shedding a rung must not lose what the ladder had received but not encoded yet. The node's FFmpeg is paused
// for seconds (SIGSTOP) under a high-bitrate broadcast, so when it resumes it is far behind, with megabytes
// queued for it (more than the kernel's socket buffers hold), and the shed comes at once: the old run's input
// is ended and it encodes its backlog while the new run (without the top rung) takes the live input. The recording
// of the kept rung then holds everything the broadcaster sent. (The old run's pull used to be ended while the
// ingest kept writing the live stream to it, which made Node destroy the socket with the backlog still queued.)

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePlaylist } from "../helpers/hls.ts";
import { sentSeconds } from "../helpers/ffmpeg.ts";
import { type GroupProcess, spawnGroup } from "../helpers/process.ts";
import { type MediaFixture, startMediaFixture } from "./fixture.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("shedding a rung keeps the backlog (real FFmpeg, slower than real time)", () => {
  let fx: MediaFixture;
  let publisher: GroupProcess | undefined;

  beforeAll(async () => {
    fx = await startMediaFixture({ MEDIA_SEGMENT_S: "1", MEDIA_LADDER: "360p,240p", MEDIA_SHED_BELOW_SPEED: "0.9", MEDIA_SHED_AFTER_S: "3", MEDIA_RECONNECT_GRACE_S: "1" });
  });
  afterAll(async () => {
    await publisher?.kill();
    await fx?.stop();
  });

  it("records all that was sent across the hand-over from the full ladder to the kept rungs", async () => {
    const next = fx.nextSession("backlog1");
    // lossless 720p: ~5 Mbit/s of a test pattern, so seconds of it are megabytes
    const url = `${fx.rtmpBase}/live/backlog1?token=${await fx.token("backlog1")}`;
    publisher = spawnGroup("ffmpeg", [
      "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
      "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "14", "-progress", "pipe:1",
      "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-f", "flv", url,
    ]);
    const rec = await next;
    await rec.segmentCount(1, "240p");
    const first = rec.session.ffmpegPid!;
    process.kill(first, "SIGSTOP");
    await sleep(8000); // the pause is the overload: FFmpeg falls 8 s behind
    process.kill(first, "SIGCONT");
    const shed = await rec.until("the shed's run", () => rec.runs.find((r) => r.reason === "shed"));
    await publisher.exited;
    const sent = sentSeconds(publisher);
    const ended = await rec.whenEnded(170_000);
    expect(ended.reason).toBe("publisher-left");
    const vod = parsePlaylist(new TextDecoder().decode((await fx.store.get(`${rec.session.keyBase}/240p/vod.m3u8`))!.body));
    const segs = vod.segments as { uri: string; duration: number }[];
    const recorded = segs.reduce((t, s) => t + s.duration, 0);
    const old = segs.filter((s) => s.uri.startsWith("e0-")).reduce((t, s) => t + s.duration, 0);
    const detail = `recorded ${recorded.toFixed(2)} s of ${sent.toFixed(2)} s sent; the old run ${old.toFixed(2)} s; shed run ${shed.epoch}`;
    // everything sent is there; what both runs hold is listed twice: from the broadcaster's last keyframe (the new
    // run starts there; 2 s GOP) to the cut of the old run's input (when the new run reports its first progress,
    // a second or two later on a loaded machine)
    expect(recorded / sent, detail).toBeGreaterThanOrEqual(0.97);
    expect(recorded, detail).toBeLessThanOrEqual(sent + 4.5);
    expect(fx.logs.filter((l) => /drain bound|no progress/.test(l.msg))).toEqual([]);
  });
});
