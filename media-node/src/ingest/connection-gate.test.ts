import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { admission, type ConnectionRefusal, ConnectionGate, isLoopback, normalizeAddress } from "./connection-gate.ts";
import { ingestSettings as INGEST_LIMIT_SETTINGS, readIngestLimits } from "../settings/ingest.ts";

describe("connection admission (pure)", () => {
  const limits = { maxConnectionsPerAddress: 2, maxConnections: 3 };

  it("knows loopback in every spelling", () => {
    for (const a of ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "::FFFF:127.0.0.9"]) expect(isLoopback(a), a).toBe(true);
    for (const a of ["192.0.2.1", "::ffff:192.0.2.1", "10.0.0.1", "2001:db8::1", "", undefined, "localhost", "128.0.0.1"]) expect(isLoopback(a), String(a)).toBe(false);
    expect(normalizeAddress("::ffff:192.0.2.1")).toBe("192.0.2.1");
  });

  it("caps connections per remote address, then in total; never the node's own address", () => {
    expect(admission("192.0.2.1", { fromAddress: 1, remoteTotal: 1 }, limits)).toEqual({ ok: true });
    expect(admission("192.0.2.1", { fromAddress: 2, remoteTotal: 2 }, limits)).toMatchObject({ ok: false, reason: "address-limit" });
    expect(admission("192.0.2.2", { fromAddress: 0, remoteTotal: 3 }, limits)).toMatchObject({ ok: false, reason: "total-limit" });
    expect(admission("127.0.0.1", { fromAddress: 500, remoteTotal: 3 }, limits)).toEqual({ ok: true });
    expect(admission("::1", { fromAddress: 500, remoteTotal: 3 }, limits)).toEqual({ ok: true });
    // another loopback address is not the node: capped like any host
    expect(admission("127.0.0.2", { fromAddress: 2, remoteTotal: 2 }, limits)).toMatchObject({ ok: false, reason: "address-limit" });
  });
});

describe("ConnectionGate on real sockets", () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  async function gated(limits: { handshakeTimeoutMs: number; maxConnectionsPerAddress: number; maxConnections: number }) {
    const refusals: ConnectionRefusal[] = [];
    const gate = new ConnectionGate(limits, (r) => void refusals.push(r));
    const accepted: Socket[] = [];
    server = createServer((s) => {
      if (gate.admit(s)) accepted.push(s);
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as { port: number }).port;
    return { gate, refusals, accepted, port };
  }

  it("destroys a connection that is not established in time, keeps one that is, and forgets closed ones", async () => {
    const { gate, refusals, accepted, port } = await gated({ handshakeTimeoutMs: 300, maxConnectionsPerAddress: 16, maxConnections: 100 });
    const idle = connect({ port, host: "127.0.0.1" });
    const busy = connect({ port, host: "127.0.0.1" });
    idle.on("error", () => {});
    await Promise.all([once(idle, "connect"), once(busy, "connect")]);
    while (accepted.length < 2) await once(server!, "connection");
    const busyLocalPort = busy.localPort;
    gate.established(accepted.find((s) => s.remotePort === busyLocalPort));
    const idleServerSide = accepted.find((s) => s.remotePort === idle.localPort)!;
    await Promise.all([once(idle, "close"), once(idleServerSide, "close")]);
    expect(idleServerSide.destroyed).toBe(true);
    expect(refusals).toMatchObject([{ reason: "handshake-timeout", address: "127.0.0.1" }]);
    expect(busy.destroyed).toBe(false);
    expect(gate.stats()).toEqual({ open: 1, remote: 0 });
    busy.destroy();
    await once(accepted.find((s) => s.remotePort === busyLocalPort)!, "close");
    expect(gate.stats()).toEqual({ open: 0, remote: 0 });
  });
});

describe("ingest limit settings", () => {
  it("has documented defaults and bounds", () => {
    expect(readIngestLimits({})).toEqual({ handshakeTimeoutMs: 5000, maxConnectionsPerAddress: 16, maxConnections: 1000, pullTtlMs: 15_000 });
    expect(readIngestLimits({ MEDIA_RTMP_HANDSHAKE_TIMEOUT_MS: "2000", MEDIA_RTMP_MAX_CONNECTIONS_PER_ADDRESS: "4" })).toMatchObject({ handshakeTimeoutMs: 2000, maxConnectionsPerAddress: 4 });
    for (const s of Object.values(INGEST_LIMIT_SETTINGS)) expect(s.doc.length).toBeGreaterThan(20);
  });

  it("lists every bad value at once", () => {
    expect(() =>
      readIngestLimits({ MEDIA_RTMP_HANDSHAKE_TIMEOUT_MS: "10", MEDIA_RTMP_MAX_CONNECTIONS_PER_ADDRESS: "0", MEDIA_RTMP_MAX_CONNECTIONS: "many", MEDIA_RTMP_PULL_TTL_MS: "999999999" }),
    ).toThrow(/HANDSHAKE_TIMEOUT_MS="10": must be at least 500[\s\S]*PER_ADDRESS="0": must be at least 1[\s\S]*MAX_CONNECTIONS="many": must be a whole number[\s\S]*PULL_TTL_MS="999999999": must be at most 300000/);
  });
});
