// Failures during one broadcast: the transcoder is killed (it restarts and the playlist continues after a
// discontinuity), the broadcaster drops and reconnects within the grace window (same stream, same playlists,
// a discontinuity, never two FFmpeg processes), and finally leaves (ENDLIST). Then a clean node shutdown with a
// stream live stops every child.

import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LiveSession, LiveSessionEvents } from "../../media-node/src/live/session.ts";
import { publishTestSource } from "../helpers/ffmpeg.ts";
import { type GroupProcess, processAlive } from "../helpers/process.ts";
import { waitFor } from "../helpers/wait.ts";
import { type MediaFixture, nextSegments, startMediaFixture } from "./fixture.ts";
import { parsePlaylist } from "../helpers/hls.ts";


describe("live stream resilience", () => {
  let fx: MediaFixture;
  let publisher: GroupProcess | undefined;
  let session: LiveSession;
  const runs: LiveSessionEvents["run"][0][] = [];
  const sessions: LiveSession[] = [];

  beforeAll(async () => {
    fx = await startMediaFixture({ MEDIA_LADDER: "240p", MEDIA_SEGMENT_S: "1", MEDIA_RECONNECT_GRACE_S: "8" });
    fx.node.live.on("session", (s) => sessions.push(s));
  });
  afterAll(async () => {
    await publisher?.kill();
    await fx?.stop();
  });

  it("restarts FFmpeg killed mid-stream; the playlist continues after a discontinuity", async () => {
    const started = once(fx.node.live, "session") as Promise<[LiveSession]>;
    publisher = publishTestSource(`${fx.rtmpBase}/live/tough?token=${await fx.token("tough")}`, { size: "426x240" });
    [session] = await started;
    session.on("run", (r) => runs.push(r));
    await once(session, "live");
    await nextSegments(session, 2);
    const pid = session.ffmpegPid;
    expect(processAlive(pid)).toBe(true);

    const next = nextSegments(session, 2);
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
    const runBefore = runs.length;
    const waiting = once(session, "state", { signal: AbortSignal.timeout(20_000) });
    await publisher!.kill(); // a dropped connection, no goodbye
    await waiting;
    expect(session.state).toBe("waiting");
    const lastPid = runs.at(-1)!.pid;
    await waitFor("the old FFmpeg to exit", () => !processAlive(lastPid), 15_000);

    publisher = publishTestSource(`${fx.rtmpBase}/live/tough?token=${await fx.token("tough")}`, { size: "426x240" });
    const resumed = await nextSegments(session, 2);
    expect(resumed[0]).toMatchObject({ discontinuity: true, epoch: runs.at(-1)!.epoch });
    expect(runs.slice(runBefore).map((r) => r.reason)).toEqual(["resume"]);
    expect(sessions).toHaveLength(1); // the same stream, not a new one
    const startedEvents = fx.events.filter((e) => e.type === "stream.started" && e.data.streamId === "tough");
    expect(startedEvents.map((e) => (e.data as { resumed: boolean }).resumed)).toEqual([false, true]);
    // one FFmpeg per stream at any time: every earlier run's process is gone
    for (const r of runs.slice(0, -1)) expect(processAlive(r.pid), `run ${r.epoch} still alive`).toBe(false);
  });

  it("ends with ENDLIST after the broadcaster leaves for good; the playlist spans all three runs", async () => {
    const ended = once(session, "ended", { signal: AbortSignal.timeout(60_000) }) as Promise<[{ reason: string; durationS: number }]>;
    await publisher!.stop();
    const [info] = await ended;
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
    const started = once(fx.node.live, "session") as Promise<[LiveSession]>;
    publisher = publishTestSource(`${fx.rtmpBase}/live/last?token=${await fx.token("last")}`, { size: "426x240" });
    const [last] = await started;
    await once(last, "live");
    const pid = last.ffmpegPid;
    expect(processAlive(pid)).toBe(true);
    await fx.node.stop();
    expect(processAlive(pid)).toBe(false);
    const pl = parsePlaylist(new TextDecoder().decode((await fx.store.get(`${last.keyBase}/240p/index.m3u8`))!.body));
    expect(pl.endList).toBe(true);
    await waitFor("stream.ended (node-shutdown) on NATS", () => fx.events.some((e) => e.type === "stream.ended" && e.data.streamId === "last" && e.data.reason === "node-shutdown"), 10_000);
  });
});
