import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { checkHealth } from "./health.ts";
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
