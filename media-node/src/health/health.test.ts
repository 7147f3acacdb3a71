import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { cachedHealth, checkHealth, type HealthReport } from "./health.ts";
import { probeNats } from "./nats-probe.ts";

describe("checkHealth", () => {
  it("is ready only when every probe answers, and bounds a hung probe by the timeout", async () => {
    const report = await checkHealth({ rtmp: async () => {}, storage: () => Promise.reject(new Error("bucket gone")), bus: () => new Promise(() => {}) }, 200);
    expect(report.ok).toBe(false);
    expect(report.checks.rtmp!.ok).toBe(true);
    expect(report.checks.storage).toMatchObject({ ok: false, error: "bucket gone" });
    expect(report.checks.bus!.error).toMatch(/within 200 ms/);
    expect((await checkHealth({ a: async () => {} }, 200)).ok).toBe(true);
  });
});

describe("probeNats", () => {
  it("accepts a server that greets with INFO and refuses one that does not", async () => {
    const serve = (greeting: string) =>
      new Promise<{ port: number; close: () => void }>((resolve) => {
        const server = createServer((s) => s.end(greeting));
        server.listen(0, "127.0.0.1", () => resolve({ port: (server.address() as { port: number }).port, close: () => server.close() }));
      });
    const nats = await serve('INFO {"server_id":"x"}\r\n');
    const http = await serve("HTTP/1.1 400 Bad Request\r\n\r\n");
    await expect(probeNats(`nats://127.0.0.1:${nats.port}`)).resolves.toBeUndefined();
    await expect(probeNats(`nats://127.0.0.1:${http.port}`)).rejects.toThrow(/not a NATS server/);
    nats.close();
    http.close();
  });
});

describe("cachedHealth", () => {
  it("runs the probes at most once per window, however many checks arrive, and again after it", async () => {
    let runs = 0;
    let now = 1000;
    const report: HealthReport = { ok: true, checks: {} };
    const check = cachedHealth(async () => (runs++, report), 2000, () => now);
    await Promise.all(Array.from({ length: 50 }, () => check()));
    expect(runs).toBe(1);
    now += 1999;
    await check();
    expect(runs).toBe(1);
    now += 1;
    await check();
    expect(runs).toBe(2);
  });

  it("does not keep a run that threw, and with a window of 0 probes every time", async () => {
    let runs = 0;
    const failing = cachedHealth(async () => {
      runs++;
      throw new Error("x");
    }, 10_000);
    await expect(failing()).rejects.toThrow("x");
    await expect(failing()).rejects.toThrow("x");
    expect(runs).toBe(2);
    let plain = 0;
    const every = cachedHealth(async () => (plain++, { ok: true, checks: {} }), 0);
    await every();
    await every();
    expect(plain).toBe(2);
  });
});
