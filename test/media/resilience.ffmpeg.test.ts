// Failures during one broadcast: the transcoder is killed (it restarts and the playlist continues after a
// discontinuity), the broadcaster drops and reconnects within the grace window (same stream, same playlists,
// a discontinuity, never two FFmpeg processes), and finally leaves (ENDLIST). Then a clean node shutdown with a
// stream live stops every child.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LiveSession } from "../../media-node/src/live/session.ts";
import { publishTestSource } from "../helpers/ffmpeg.ts";
import { type GroupProcess, processAlive } from "../helpers/process.ts";
import { waitFor } from "../helpers/wait.ts";
import { type MediaFixture, type SessionRecorder, startMediaFixture } from "./fixture.ts";
import { parsePlaylist } from "../helpers/hls.ts";


describe("live stream resilience", () => {
  let fx: MediaFixture;
  let publisher: GroupProcess | undefined;
  let session: LiveSession;
  let rec: SessionRecorder;
  // The grace window outlasts the longest the test waits for the old FFmpeg after a drop (it exits on the pull's
  // end; at worst the session stops it RW_TIMEOUT_S + 2 s after the drop): the reconnect always lands inside it.
  // A long read timeout: only the faults this test injects end a run, never a busy machine's stall.
  const RW_TIMEOUT_S = 10;
  const GRACE_S = 25;

  beforeAll(async () => {
    fx = await startMediaFixture({ MEDIA_LADDER: "240p", MEDIA_SEGMENT_S: "1", MEDIA_RECONNECT_GRACE_S: String(GRACE_S), MEDIA_RW_TIMEOUT_S: String(RW_TIMEOUT_S) });
  });
  afterAll(async () => {
    await publisher?.kill();
    await fx?.stop();
  });

  it("restarts FFmpeg killed mid-stream; the playlist continues after a discontinuity", async () => {
    const began = fx.nextSession("tough");
    publisher = publishTestSource(`${fx.rtmpBase}/live/tough?token=${await fx.token("tough")}`, { size: "426x240" });
    rec = await began;
    session = rec.session;
    const runs = rec.runs;
    await rec.whenLive();
    await rec.segmentCount(2);
    const pid = session.ffmpegPid;
    expect(processAlive(pid)).toBe(true);

    const next = rec.nextSegments(2);
    process.kill(pid!, "SIGKILL");
    const after = await next;
    expect(after[0]).toMatchObject({ epoch: 1, discontinuity: true });
    expect(runs.map((r) => [r.epoch, r.reason])).toEqual([
      [0, "start"],
      [1, "restart"],
    ]);
    expect(processAlive(pid)).toBe(false);
    const pl = parsePlaylist(new TextDecoder().decode((await fx.store.get(`${session.keyBase}/240p/index.m3u8`))!.body));
    expect(pl.endList).toBeUndefined();
    const flags = pl.segments.map((s: { discontinuity?: boolean; uri: string }) => [s.uri.split("-")[0], Boolean(s.discontinuity)]);
    expect(flags.filter(([, d]: [string, boolean]) => d)).toEqual([["e1", true]]);
    // the restart is counted
    expect(await (await fetch(`${fx.node.opsUrl}/metrics`)).text()).toMatch(/pulsecast_ffmpeg_restarts_total 1/);
  });

  it("a broadcaster who drops and reconnects within the grace window continues the same stream", async () => {
    const runs = rec.runs;
    const runBefore = runs.length;
    const statesBefore = rec.states.length;
    await publisher!.kill(); // a dropped connection, no goodbye
    await rec.until("the session to wait for the broadcaster", () => rec.states.slice(statesBefore).includes("waiting"), 20_000);
    expect(session.state).toBe("waiting");
    const lastPid = runs.at(-1)!.pid;
    await waitFor("the old FFmpeg to exit", () => !processAlive(lastPid), (RW_TIMEOUT_S + 4) * 1000);
    expect(session.state, "the reconnect must come within the grace window").toBe("waiting");

    const segmentsBefore = rec.segmentsOf().length;
    publisher = publishTestSource(`${fx.rtmpBase}/live/tough?token=${await fx.token("tough")}`, { size: "426x240" });
    const resumed = await rec.until("2 segments of the resumed run", () => {
      const got = rec.segmentsOf().slice(segmentsBefore).filter((s) => s.epoch > runs[runBefore - 1]!.epoch);
      return got.length >= 2 ? got : undefined;
    });
    expect(resumed[0]).toMatchObject({ discontinuity: true, epoch: runs.at(-1)!.epoch });
    expect(runs.slice(runBefore).map((r) => r.reason)).toEqual(["resume"]);
    expect(fx.sessions.map((r) => r.session)).toEqual([session]); // the same stream, not a new one
    await fx.waitForEvent("stream.started", (e) => e.data.streamId === "tough" && e.data.resumed);
    const startedEvents = fx.events.filter((e) => e.type === "stream.started" && e.data.streamId === "tough");
    expect(startedEvents.map((e) => (e.data as { resumed: boolean }).resumed)).toEqual([false, true]);
    // one FFmpeg per stream at any time: every earlier run's process is gone
    for (const r of rec.runs.slice(0, -1)) expect(processAlive(r.pid), `run ${r.epoch} still alive`).toBe(false);
  });

  it("ends with ENDLIST after the broadcaster leaves for good; the playlist spans all three runs", async () => {
    await publisher!.stop();
    const info = await rec.whenEnded((GRACE_S + 30) * 1000);
    expect(info.reason).toBe("publisher-left");
    const vod = parsePlaylist(new TextDecoder().decode((await fx.store.get(`${session.keyBase}/240p/vod.m3u8`))!.body));
    expect(vod.endList).toBe(true);
    const epochs = [...new Set(vod.segments.map((s: { uri: string }) => s.uri.split("-")[0]))];
    expect(epochs).toEqual(["e0", "e1", "e2"]);
    expect(vod.segments.filter((s: { discontinuity?: boolean }) => s.discontinuity)).toHaveLength(2);
    for (const s of vod.segments) expect(await fx.store.head(`${session.keyBase}/240p/${s.uri}`), s.uri).not.toBeNull();
    const live = parsePlaylist(new TextDecoder().decode((await fx.store.get(`${session.keyBase}/240p/index.m3u8`))!.body));
    expect(live.endList).toBe(true);
    await waitFor("stream.ended on NATS", () => fx.events.some((e) => e.type === "stream.ended" && e.data.streamId === "tough"));
    expect(fx.events.filter((e) => e.type === "stream.ended" && e.data.streamId === "tough")).toHaveLength(1);
  });

  it("shuts down cleanly with a stream live: ENDLIST written, no FFmpeg left", async () => {
    const began = fx.nextSession("last");
    publisher = publishTestSource(`${fx.rtmpBase}/live/last?token=${await fx.token("last")}`, { size: "426x240" });
    const lastRec = await began;
    const last = lastRec.session;
    await lastRec.whenLive();
    const pid = last.ffmpegPid;
    expect(processAlive(pid)).toBe(true);
    await fx.node.stop();
    expect(processAlive(pid)).toBe(false);
    const pl = parsePlaylist(new TextDecoder().decode((await fx.store.get(`${last.keyBase}/240p/index.m3u8`))!.body));
    expect(pl.endList).toBe(true);
    await waitFor("stream.ended (node-shutdown) on NATS", () => fx.events.some((e) => e.type === "stream.ended" && e.data.streamId === "last" && e.data.reason === "node-shutdown"), 10_000);
  });
});
