// Who may play from the RTMP port, with real FFmpeg players against a real node-media-server: only the holder of
// a pull credential minted for that stream, once, from the node's own address (127.0.0.1), before it expires and while its publisher is
// there. The credential is in FFmpeg's command line (anyone on the host can read it with `ps`); these tests read
// it from /proc like `ps` does and show what it is worth there.

import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeSource } from "../../media-node/src/transcode/probe.ts";
import { publishTestSource } from "../helpers/ffmpeg.ts";
import { type GroupProcess, spawnGroup } from "../helpers/process.ts";
import { type ConnectionRefused, type IngestHarness, OUTSIDE_ADDRESS, relayFrom, startIngest } from "./harness.ts";

const PULL_TTL_MS = 1000;

/** An FFmpeg player that reads a few frames and exits 0, or fails when the play is refused. */
function player(url: string, frames = 3): GroupProcess {
  return spawnGroup("ffmpeg", ["-hide_banner", "-nostdin", "-loglevel", "info", "-rw_timeout", "10000000", "-analyzeduration", "500000", "-i", url, "-frames:v", String(frames), "-f", "null", "-"]);
}

async function play(url: string): Promise<number | null> {
  const p = player(url);
  const timer = setTimeout(() => void p.kill(), 30_000);
  try {
    return await p.exited;
  } finally {
    clearTimeout(timer);
  }
}

function credentialOf(url: string): string {
  const credential = new URL(url.replace(/^rtmp:/, "http:")).searchParams.get("pull");
  if (!credential) throw new Error(`no pull credential in ${url}`);
  return credential;
}

describe("RTMP play: per-stream, per-run pull credentials, accepted only from the node itself", () => {
  let h: IngestHarness;
  const publishers: GroupProcess[] = [];
  const outside = OUTSIDE_ADDRESS;

  /** The next connectionRefused event (the play's refusal) while `act` runs. */
  async function refusalOf(act: () => Promise<number | null>): Promise<{ refusal: ConnectionRefused; code: number | null }> {
    const refused = once(h.ingest, "connectionRefused", { signal: AbortSignal.timeout(30_000) }) as Promise<[ConnectionRefused]>;
    const code = await act();
    const [refusal] = await refused;
    return { refusal, code };
  }

  async function publish(streamId: string): Promise<GroupProcess> {
    const accepted = new Promise<void>((resolve) => {
      const on = (p: { streamId: string }) => {
        if (p.streamId !== streamId) return;
        h.ingest.off("publish", on);
        resolve();
      };
      h.ingest.on("publish", on);
    });
    const p = publishTestSource(`rtmp://127.0.0.1:${h.port}/live/${streamId}?token=${await h.token(streamId)}`, { size: "160x90", rate: 10, gop: 10, audio: false });
    publishers.push(p);
    await accepted;
    return p;
  }

  beforeAll(async () => {
    h = await startIngest({ pullTtlMs: PULL_TTL_MS }, "127.0.0.1");
    await Promise.all([publish("a"), publish("b")]);
  });
  afterAll(async () => {
    for (const p of publishers) await p.kill();
    await h?.stop();
  });

  it("plays a stream with the credential minted for it, once; the next run needs a new one", async () => {
    const url = h.ingest.pullUrl("live", "b");
    expect(await play(url)).toBe(0);
    const { refusal, code } = await refusalOf(() => play(url));
    expect(refusal.reason).toBe("pull-unknown");
    expect(code).not.toBe(0);
    expect(await play(h.ingest.pullUrl("live", "b"))).toBe(0);
  });

  it("ffprobe (the node's probe of a source without RTMP metadata) works with its own credential", async () => {
    const refusedBefore = h.refusals.length;
    const info = await probeSource(h.ingest.pullUrl("live", "a"), { rwTimeoutS: 5, timeoutMs: 30_000 });
    expect(info.video).toMatchObject({ width: 160, height: 90 });
    expect(h.refusals.length).toBe(refusedBefore); // one connection, one use: nothing refused
  });

  it("a credential for stream A (as `ps` shows it before that FFmpeg connected) cannot play stream B", async () => {
    const forA = credentialOf(h.ingest.pullUrl("live", "a"));
    const onB = await refusalOf(() => play(`rtmp://127.0.0.1:${h.port}/live/b?pull=${forA}`));
    expect(onB.refusal.reason).toBe("pull-wrong-stream");
    expect(onB.code).not.toBe(0);
    // presented for the wrong stream, it has leaked: it is revoked for its own stream too
    expect((await refusalOf(() => play(`rtmp://127.0.0.1:${h.port}/live/a?pull=${forA}`))).refusal.reason).toBe("pull-unknown");
  });

  it("a credential read from `ps` of the running pull of stream A plays neither stream B nor A again", async () => {
    const running = player(h.ingest.pullUrl("live", "a"), 100_000);
    try {
      await running.waitForOutput(/Input #0, flv/, 30_000);
      // what `ps` shows: the command line of the node's FFmpeg
      const cmdline = (await readFile(`/proc/${running.child.pid}/cmdline`, "utf8")).split("\0");
      const seen = credentialOf(cmdline.find((a) => a.startsWith("rtmp://"))!);

      // used by that run: it is spent, for every stream
      const onB = await refusalOf(() => play(`rtmp://127.0.0.1:${h.port}/live/b?pull=${seen}`));
      expect(onB.refusal.reason).toBe("pull-unknown");
      expect(onB.code).not.toBe(0);
      const onA = await refusalOf(() => play(`rtmp://127.0.0.1:${h.port}/live/a?pull=${seen}`));
      expect(onA.refusal.reason).toBe("pull-unknown");
      expect(onA.code).not.toBe(0);
      // the node's own pull is undisturbed
      expect(running.child.exitCode).toBeNull();
    } finally {
      await running.kill();
    }
  });

  it("refuses a valid credential from another address than the node's own, and revokes it", async () => {
    const credential = credentialOf(h.ingest.pullUrl("live", "a"));
    const relay = await relayFrom(outside, h.port);
    const remote = await refusalOf(() => play(`rtmp://127.0.0.1:${relay.port}/live/a?pull=${credential}`)).finally(() => relay.close());
    expect(remote.refusal).toMatchObject({ reason: "pull-not-loopback", address: outside });
    expect(remote.code).not.toBe(0);
    const later = await refusalOf(() => play(`rtmp://127.0.0.1:${h.port}/live/a?pull=${credential}`));
    expect(later.refusal.reason).toBe("pull-unknown");
  });

  it("refuses an expired credential", async () => {
    const url = h.ingest.pullUrl("live", "a");
    // expiry is the passing of time itself: there is no event to wait for
    await new Promise((r) => setTimeout(r, PULL_TTL_MS + 200));
    const { refusal, code } = await refusalOf(() => play(url));
    expect(refusal.reason).toBe("pull-expired");
    expect(code).not.toBe(0);
  });

  it("revokes a stream's unused credentials when its publisher leaves", async () => {
    const c = await publish("c");
    const url = h.ingest.pullUrl("live", "c");
    const left = once(h.ingest, "unpublish", { signal: AbortSignal.timeout(30_000) });
    await c.kill();
    await left;
    const { refusal } = await refusalOf(() => play(url));
    expect(refusal.reason).toBe("pull-unknown");
  });

  it("refuses a play without a credential, and one with a made-up credential", async () => {
    expect((await refusalOf(() => play(`rtmp://127.0.0.1:${h.port}/live/a`))).refusal.reason).toBe("play-not-allowed");
    expect((await refusalOf(() => play(`rtmp://127.0.0.1:${h.port}/live/a?pull=AAAAAAAAAAAAAAAAAAAAAAAA`))).refusal.reason).toBe("pull-unknown");
  });
});
