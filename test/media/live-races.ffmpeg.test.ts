// Races in a live session's lifecycle, each made deterministic: a broadcaster who is back while the previous
// FFmpeg is still draining (one resume run, no phantom "restart"), a drop while the session is still describing
// its source (the run that follows is live and restarted on a crash), the master playlist waiting for every
// variant playlist to be stored, and the pull key kept out of the logs (redactPullKey itself: transcoder.test.ts).

import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Envelope } from "../../shared/envelope.ts";
import { newId } from "../../shared/ids.ts";
import { loadConfig } from "../../media-node/src/config.ts";
import { type LiveDeps, type LiveSessionEvents, LiveSession as Session } from "../../media-node/src/live/session.ts";
import { createLogger } from "../../media-node/src/log.ts";
import { NodeMetrics } from "../../media-node/src/metrics/metrics.ts";
import type { Uploader } from "../../media-node/src/storage/types.ts";
import type { SourceInfo } from "../../media-node/src/transcode/ladder.ts";
import { publishTestSource } from "../helpers/ffmpeg.ts";
import { freePort } from "../helpers/ports.ts";
import { type GroupProcess, processAlive } from "../helpers/process.ts";
import { waitFor } from "../helpers/wait.ts";
import { parsePlaylist } from "../helpers/hls.ts";
import { type MediaFixture, startMediaFixture } from "./fixture.ts";


/** `promise`, or a clear failure after `ms` (instead of the suite's timeout). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function restartsTotal(fx: MediaFixture): Promise<number> {
  const text = await (await fetch(`${fx.node.opsUrl}/metrics`)).text();
  return Number(/^pulsecast_ffmpeg_restarts_total (\d+)/m.exec(text)?.[1] ?? 0);
}

describe("live session races (real node, real FFmpeg)", () => {
  let fx: MediaFixture;
  let publisher: GroupProcess | undefined;

  beforeAll(async () => {
    fx = await startMediaFixture({ MEDIA_LADDER: "360p,240p", MEDIA_SEGMENT_S: "1", MEDIA_RECONNECT_GRACE_S: "30" });
  });
  afterAll(async () => {
    await publisher?.kill();
    await fx?.stop();
  });

  it("a broadcaster back while the old FFmpeg still drains gets one resume run, not a phantom restart", async () => {
    const began = fx.nextSession("race");
    publisher = publishTestSource(`${fx.rtmpBase}/live/race?token=${await fx.token("race")}`, { size: "426x240" });
    const rec = await began;
    const session = rec.session;
    await rec.whenLive();
    await rec.segmentCount(1);
    const restartsBefore = await restartsTotal(fx);
    const oldPid = session.ffmpegPid;
    expect(processAlive(oldPid)).toBe(true);

    // Storage slow for the old run from now on: the segments it closes while draining are stored after it has
    // exited and after the resume run began (as on a busy machine or a remote store). They must still come first.
    const uploader = fx.node.uploader;
    const original = uploader.upload.bind(uploader);
    uploader.upload = (key, file, meta) => (key.includes("/e0-") ? new Promise((r) => setTimeout(r, 500)).then(() => original(key, file, meta)) : original(key, file, meta));
    try {
      // Freeze the old FFmpeg so it is certainly still "draining" when the broadcaster is back.
      process.kill(oldPid!, "SIGSTOP");
      try {
        await publisher.kill();
        await rec.whenState("waiting", 20_000);
        expect(session.state).toBe("waiting");
        const firstPublisher = session.publisherSessionId;
        publisher = publishTestSource(`${fx.rtmpBase}/live/race?token=${await fx.token("race")}`, { size: "426x240" });
        await rec.until("the session to take the reconnect", () => session.publisherSessionId !== firstPublisher, 20_000);
      } finally {
        process.kill(oldPid!, "SIGCONT"); // it now gets the resume's SIGINT and exits
      }
      await waitFor("the old FFmpeg to exit", () => !processAlive(oldPid), 20_000);
      await within(rec.until("3 segments of the resume run", () => rec.segmentsOf("240p").filter((s) => s.epoch === 1).length >= 3), 30_000, "3 segments after the resume");
    } finally {
      uploader.upload = original;
    }
    // Every segment of the old run (its drained last ones included) is ordered before the resume run's, and there
    // is no third run: before the fix the old run's exit counted as a crash and a "restart" replaced the resume.
    const epochs = rec.segmentsOf("240p").map((s) => s.epoch);
    expect(epochs).toEqual([...epochs].sort((x, y) => x - y));
    expect([...new Set(epochs)]).toEqual([0, 1]);
    const resumed = rec.segmentsOf("240p").filter((s) => s.epoch === 1);
    expect(resumed.slice(0, 3).map((s) => [s.index, s.discontinuity])).toEqual([
      [0, true],
      [1, false],
      [2, false],
    ]);
    expect(rec.runs.map((r) => r.reason)).toEqual(["start", "resume"]);
    expect(await restartsTotal(fx)).toBe(restartsBefore);
    // The stored live playlist says the same: old-run segments, one discontinuity, then the resume run's.
    const pl = parsePlaylist(new TextDecoder().decode((await fx.store.get(`${session.keyBase}/240p/index.m3u8`))!.body));
    const listed = (pl.segments as { uri: string; discontinuity?: boolean }[]).map((s) => ({ epoch: s.uri.split("-")[0], discontinuity: Boolean(s.discontinuity) }));
    const firstResumed = listed.findIndex((s) => s.epoch === "e1");
    expect(firstResumed).toBeGreaterThanOrEqual(0);
    expect(listed.slice(firstResumed).every((s) => s.epoch === "e1")).toBe(true);
    // (the first line of a playlist carries no DISCONTINUITY tag: nothing precedes it there)
    expect(listed.flatMap((s, i) => (s.discontinuity ? [i] : []))).toEqual(firstResumed > 0 ? [firstResumed] : []);
    expect(await fx.node.live.kick("race")).toBe(true);
  });

  it("the master playlist is stored only after every variant playlist is", async () => {
    // Storage slow for one variant's first playlist: the other variant's segments keep arriving meanwhile.
    const uploader = fx.node.uploader;
    const original = uploader.uploadBody.bind(uploader);
    let delayed = false;
    uploader.uploadBody = (key, body, meta) => {
      if (!delayed && key.includes("/gate/") && key.endsWith("/240p/index.m3u8")) {
        delayed = true;
        return new Promise((r) => setTimeout(r, 3000)).then(() => original(key, body, meta));
      }
      return original(key, body, meta);
    };
    try {
      const began = fx.nextSession("gate");
      // 640x360: both rungs of the ladder (a smaller source would get 240p alone)
      publisher = publishTestSource(`${fx.rtmpBase}/live/gate?token=${await fx.token("gate")}`, { size: "640x360" });
      const rec = await began;
      const session = rec.session;
      await rec.whenLive();
      expect(delayed).toBe(true);
      // "live" follows the master's upload: every playlist the master lists must be there already.
      for (const v of ["360p", "240p"]) expect(await fx.store.head(`${session.keyBase}/${v}/index.m3u8`), v).not.toBeNull();
      expect(await fx.store.head(session.masterKey)).not.toBeNull();
      expect(await fx.node.live.kick("gate")).toBe(true);
    } finally {
      uploader.uploadBody = original;
    }
  });
});

describe("live session: the broadcaster drops while the source is still being described", () => {
  let workDir: string;
  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "pulsecast-drop-"));
  });
  afterAll(async () => {
    await rm(workDir, { recursive: true, force: true });
  });

  it("the run after the reconnect is live, its crash is restarted, and the pull key never reaches the logs", async () => {
    const config = loadConfig({ PUBLISH_TOKEN_SECRET: "x".repeat(32), MEDIA_LADDER: "240p", MEDIA_X264_PRESET: "ultrafast" });
    const lines: string[] = [];
    const events: Envelope[] = [];
    const disconnected: string[] = [];
    // Nothing listens there: every FFmpeg run fails at once, like a crash under a broadcaster who is still there.
    const pullUrl = `rtmp://127.0.0.1:${await freePort()}/live/drop?pull=SECRETPULLKEY`;
    let describe!: (s: SourceInfo) => void;
    // Only what a session calls; storing is never reached (no segment is ever produced).
    const uploader = { upload: async () => {}, uploadBody: async () => {}, stats: () => ({ pending: 0 }) } as unknown as Uploader;
    const deps: LiveDeps = {
      settings: {
        nodeId: "test-node",
        segmentS: 1,
        ladder: { rungs: config.ladder, passthrough: config.passthrough, separateAudio: config.separateAudio },
        x264Preset: "ultrafast",
        ffmpegPath: config.ffmpegPath,
        rwTimeoutS: 2,
        maxRestarts: 1,
        reconnectGraceS: 120, // far beyond the test: only a restart-and-give-up can end this stream in time
        liveWindow: 6,
        keyPrefix: "live",
        workDir,
        record: false,
      },
      uploader,
      publicUrl: (key) => `http://127.0.0.1/media/${key}`,
      events: { publish: async (e) => void events.push(e) },
      ingest: { pullUrl: () => pullUrl, isPublishing: () => true, disconnect: (id) => void disconnected.push(id) },
      metrics: new NodeMetrics(),
      log: createLogger({ level: "debug", sink: (line) => void lines.push(line) }),
      describeSource: () => new Promise((r) => (describe = r)),
    };
    const session = new Session({ streamId: "drop", app: "live", broadcastId: newId("brd"), claims: { sid: "drop", app: "live", scope: "publish", exp: 0 }, publisherSessionId: "pub-1" }, deps);
    const runs: LiveSessionEvents["run"][0][] = [];
    session.on("run", (r) => runs.push(r));
    const ended = once(session, "ended", { signal: AbortSignal.timeout(60_000) }) as Promise<LiveSessionEvents["ended"]>;

    const starting = session.start(); // now waiting for the source's description
    session.publisherLeft("pub-1");
    expect(session.state).toBe("waiting");
    await session.resume("pub-2");
    expect(session.state).toBe("starting");
    describe({ video: { width: 426, height: 240, fps: 30 }, audio: { channels: 2, sampleRate: 48_000 } });
    await starting;
    expect(session.state).toBe("live");

    // Before the fix the session stayed "waiting": the crash was taken for a departed broadcaster, never restarted.
    const [info] = await ended;
    expect(info.reason).toBe("transcoder-failed");
    expect(runs.map((r) => r.reason)).toEqual(["start", "restart"]);
    expect(disconnected).toEqual(["pub-2"]);
    expect(events.filter((e) => e.type === "stream.ended")).toHaveLength(1);
    const stderrLogs = lines.filter((l) => l.includes("ffmpeg died") || l.includes("ffmpeg keeps failing"));
    expect(stderrLogs).toHaveLength(2);
    expect(lines.filter((l) => l.includes("SECRETPULLKEY"))).toEqual([]);
  });
});
