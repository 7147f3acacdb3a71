import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, type LogFields } from "../log.ts";
import { NodeMetrics } from "../metrics/metrics.ts";
import { createHttpServer, listen } from "./server.ts";

describe("media node HTTP", () => {
  let ready = true;
  const metrics = new NodeMetrics({ bytesIn: () => 1234, defaultMetrics: false });
  const logs: LogFields[] = [];
  const server = createHttpServer(
    {
      health: async () => ({ ok: ready, checks: { storage: ready ? { ok: true, ms: 1 } : { ok: false, ms: 1, error: "bucket gone" } } }),
      metrics: () => metrics.render(),
      media: async (req, res) => {
        if (!req.url?.startsWith("/media/")) return false;
        if (req.url === "/media/boom") throw new Error("handler exploded");
        res.end("segment");
        return true;
      },
    },
    createLogger({ sink: (_l, r) => void logs.push(r) }),
  );
  let base: string;
  beforeAll(async () => {
    await listen(server, "127.0.0.1", 0);
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("answers /healthz with 200 ready or 503 not ready and the failing check, keeping the reason in the log", async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    ready = false;
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(503);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({ status: "not ready", checks: { storage: { ok: false } } });
    // The reason may name a folder or a server address: it goes to the log, never to the caller.
    expect(text).not.toContain("bucket gone");
    expect(logs.some((l) => l.msg === "health check failing" && l.storage === "bucket gone")).toBe(true);
    ready = true;
  });

  it("serves Prometheus metrics", async () => {
    metrics.streamStarted("s1");
    metrics.ffmpegProgress("s1", { speed: 1.02, fps: 30 });
    metrics.segmentStored(0.05);
    metrics.publishRefused("token-expired");
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toContain("pulsecast_live_streams 1");
    expect(text).toContain('pulsecast_ffmpeg_speed{stream="s1"} 1.02');
    expect(text).toContain('pulsecast_publish_refused_total{reason="token-expired"} 1');
    expect(text).toContain("pulsecast_bytes_in_total 1234");
    metrics.streamEnded("s1", "publisher-left");
    const after = await (await fetch(`${base}/metrics`)).text();
    expect(after).not.toContain('pulsecast_ffmpeg_speed{stream="s1"}'); // per-stream series go with the stream
    expect(after).toContain('pulsecast_streams_ended_total{reason="publisher-left"} 1');
  });

  it("routes /media/ to the storage handler, 404s the rest, and turns a handler crash into a logged 500", async () => {
    expect(await (await fetch(`${base}/media/x.m4s`)).text()).toBe("segment");
    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: expect.stringContaining("/nope") });
    expect((await fetch(`${base}/media/boom`)).status).toBe(500);
    expect(logs.some((l) => l.msg === "http handler failed")).toBe(true);
  });
});
