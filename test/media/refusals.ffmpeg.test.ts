// Everything that must NOT become a stream: bad tokens, unknown apps, path tricks, a second publisher on a live
// key; and bytes that are not RTMP at all. Each is refused with a logged reason, starts no transcode, stores
// nothing, and does not disturb the stream that is live meanwhile.

import { once } from "node:events";
import { connect, createServer, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publishTestSource } from "../helpers/ffmpeg.ts";
import type { GroupProcess } from "../helpers/process.ts";
import { waitFor } from "../helpers/wait.ts";
import { type MediaFixture, type SessionRecorder, startMediaFixture } from "./fixture.ts";

describe("refused publishes and garbage on the RTMP port", () => {
  let fx: MediaFixture;
  let livePublisher: GroupProcess | undefined;
  let steady: SessionRecorder;
  const sessionsStarted = () => fx.sessions.map((r) => r.session.streamId);

  beforeAll(async () => {
    fx = await startMediaFixture({ MEDIA_LADDER: "240p", MEDIA_SEGMENT_S: "1" });
    // A stream that is live through every case below, to show the refusals do not disturb it.
    const began = fx.nextSession("steady");
    livePublisher = publishTestSource(`${fx.rtmpBase}/live/steady?token=${await fx.token("steady")}`, { size: "426x240", audio: false });
    steady = await began;
    await steady.whenLive();
  });
  afterAll(async () => {
    await livePublisher?.kill();
    await fx?.stop();
  });

  async function expectRefused(url: string, reason: string, streamKey: string) {
    const refusal = once(fx.node.ingest, "refused", { signal: AbortSignal.timeout(20_000) }) as Promise<[{ reason: string; detail: string }]>;
    const pub = publishTestSource(url, { size: "320x180", audio: false, durationS: 20 });
    try {
      const [refused] = await refusal;
      expect(refused.reason).toBe(reason);
      expect(refused.detail.length).toBeGreaterThan(0);
      // the broadcaster's connection is closed: its FFmpeg gives up
      const code = await Promise.race([pub.exited, new Promise((r) => setTimeout(() => r("still running"), 15_000))]);
      expect(code).not.toBe("still running");
    } finally {
      await pub.kill();
    }
    expect(fx.logs.some((l) => l.msg === "publish refused" && l.reason === reason)).toBe(true);
    expect(sessionsStarted().filter((s) => s !== "steady")).toEqual([]);
    if (streamKey) expect(await fx.store.list(`live/${streamKey}/`)).toEqual([]);
  }

  it("refuses a publish without a token", async () => {
    await expectRefused(`${fx.rtmpBase}/live/k-missing`, "token-missing", "k-missing");
  });

  it("refuses a forged token (signed with another secret)", async () => {
    await expectRefused(`${fx.rtmpBase}/live/k-forged?token=${await fx.token("k-forged", {}, "not-the-secret-0123456789abcdef")}`, "token-bad-signature", "k-forged");
  });

  it("refuses an expired token", async () => {
    await expectRefused(`${fx.rtmpBase}/live/k-expired?token=${await fx.token("k-expired", { exp: Math.floor(Date.now() / 1000) - 3600 })}`, "token-expired", "k-expired");
  });

  it("refuses a token with the wrong scope", async () => {
    await expectRefused(`${fx.rtmpBase}/live/k-scope?token=${await fx.token("k-scope", { scope: "play" as never })}`, "token-wrong-scope", "k-scope");
  });

  it("refuses a token minted for another stream", async () => {
    await expectRefused(`${fx.rtmpBase}/live/k-other?token=${await fx.token("somebody-else")}`, "token-wrong-stream", "k-other");
  });

  it("refuses an unknown RTMP app even with a valid token", async () => {
    await expectRefused(`${fx.rtmpBase}/admin/k-app?token=${await fx.token("k-app", { app: "admin" })}`, "unknown-app", "k-app");
  });

  it("refuses stream keys with path tricks ('..') and over-long keys", async () => {
    await expectRefused(`${fx.rtmpBase}/live/..evil?token=${await fx.token("evil")}`, "bad-stream-key", "");
    const long = "k".repeat(80);
    await expectRefused(`${fx.rtmpBase}/live/${long}?token=x`, "bad-stream-key", "");
    expect((await fx.store.list("")).every((k) => k.startsWith("live/steady/"))).toBe(true);
  });

  it("refuses a second publisher on a live key; the first keeps going", async () => {
    await expectRefused(`${fx.rtmpBase}/live/steady?token=${await fx.token("steady")}`, "already-live", "");
    expect(steady.session.state).toBe("live");
    expect(fx.node.ingest.isPublishing("steady")).toBe(true);
    expect(sessionsStarted()).toEqual(["steady"]); // no second session, no second FFmpeg
  });

  it("survives garbage bytes and a half handshake on the RTMP port without disturbing the live stream", async () => {
    const port = Number(new URL(fx.rtmpBase.replace("rtmp:", "http:")).port);
    const send = (payload: Buffer, keepOpenMs: number) =>
      new Promise<void>((resolve) => {
        const socket = connect({ host: "127.0.0.1", port }, () => {
          socket.write(payload);
          setTimeout(() => socket.destroy(), keepOpenMs);
        });
        socket.on("error", () => {});
        socket.on("close", () => resolve());
      });
    const garbage = Buffer.alloc(64 * 1024);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) % 256;
    const halfHandshake = Buffer.concat([Buffer.from([3]), Buffer.alloc(700, 1)]); // C0 + part of C1, then silence
    const validHandshakeThenJunk = Buffer.concat([Buffer.from([3]), Buffer.alloc(1536, 0), Buffer.alloc(1536, 0), Buffer.alloc(4096, 0xff)]);
    await Promise.all([send(garbage, 200), send(halfHandshake, 1500), send(validHandshakeThenJunk, 500), send(Buffer.from("GET / HTTP/1.1\r\n\r\n"), 200)]);

    // The live stream keeps producing segments after the abuse...
    await steady.nextSegments(2, "240p", 20_000);
    // ...and the node still answers and is ready.
    const health = await fetch(`${fx.node.opsUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: "ready", checks: { rtmp: { ok: true }, storage: { ok: true }, bus: { ok: true } } });
  });

  it("exposes refusals and the live stream in /metrics", async () => {
    const text = await (await fetch(`${fx.node.opsUrl}/metrics`)).text();
    expect(text).toMatch(/pulsecast_live_streams 1/);
    expect(text).toMatch(/pulsecast_publish_refused_total\{reason="token-missing"\} 1/);
    expect(text).toMatch(/pulsecast_publish_refused_total\{reason="already-live"\} 1/);
    expect(text).toMatch(/pulsecast_ffmpeg_speed\{stream="steady"\} [\d.]+/);
    expect(text).toMatch(/pulsecast_ffmpeg_fps\{stream="steady"\} [\d.]+/);
    expect(text).toMatch(/pulsecast_segment_upload_seconds_count [1-9]/);
    expect(text).toMatch(/pulsecast_bytes_in_total [1-9]/);
    expect(text).toMatch(/pulsecast_bytes_out_total [1-9]/);
    expect(text).toMatch(/pulsecast_upload_failures_total/);
  });

  // Last: it leaves a second stream live, which the metrics test above does not expect.
  it("a refused publisher that ignores the close loses the key at once; the real broadcaster then gets its ladder", async () => {
    const port = Number(new URL(fx.rtmpBase.replace("rtmp:", "http:")).port);
    // A relay that never passes the server's FIN on to the publisher and keeps forwarding what it sends: a client
    // that ignores the close. Only a connection the server destroys (not merely ends) gets rid of it.
    const upstreams: Socket[] = [];
    const relay = createServer({ allowHalfOpen: true }, (client) => {
      const upstream = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
      upstreams.push(upstream);
      client.on("data", (d) => upstream.write(d));
      upstream.on("data", (d) => client.write(d));
      upstream.on("close", () => client.destroy());
      client.on("close", () => upstream.destroy());
      client.on("error", () => {});
      upstream.on("error", () => {});
    });
    await new Promise<void>((r) => relay.listen(0, "127.0.0.1", () => r()));
    const relayPort = (relay.address() as { port: number }).port;
    const stubborn = publishTestSource(`rtmp://127.0.0.1:${relayPort}/live/k-stubborn?token=${await fx.token("k-stubborn", {}, "not-the-secret-0123456789abcdef")}`, { size: "320x180", audio: false, durationS: 60 });
    let real: GroupProcess | undefined;
    try {
      const [refused] = (await once(fx.node.ingest, "refused", { signal: AbortSignal.timeout(20_000) })) as [{ reason: string; name: string }];
      expect(refused).toMatchObject({ reason: "token-bad-signature", name: "k-stubborn" });
      // the node hung up on it although the "client" never closed its side
      await waitFor("the node to drop the refused connection", () => upstreams.length > 0 && upstreams.every((u) => u.destroyed), 15_000);

      const began = fx.nextSession("k-stubborn");
      real = publishTestSource(`${fx.rtmpBase}/live/k-stubborn?token=${await fx.token("k-stubborn")}`, { size: "426x240", audio: false });
      await (await began).whenLive();
      expect(fx.node.ingest.isPublishing("k-stubborn")).toBe(true);
      expect((await fx.store.list("live/k-stubborn/")).length).toBeGreaterThan(0);
      expect(fx.logs.some((l) => /k-stubborn already has a publisher/.test(String(l.msg)))).toBe(false);
    } finally {
      await stubborn.kill();
      await real?.kill();
      relay.close();
    }
  });
});
