// The per-address and total connection caps of the RTMP port, on real sockets against the real node-media-server.
// Connections come from 127.0.0.2, which the node treats like any other host; 127.0.0.1 (where the node's own
// FFmpeg pulls come from) is exempt from both caps.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../helpers/ports.ts";
import { run } from "../helpers/process.ts";
import { waitFor } from "../helpers/wait.ts";
import { allBy, type IngestHarness, OUTSIDE_ADDRESS, type OpenSocket, openSocket, startIngest } from "./harness.ts";

// long enough that nothing in these tests is closed by the timeout: every close seen here is a cap
const HANDSHAKE_TIMEOUT_MS = 30_000;

describe("RTMP connection caps", () => {
  const outside = OUTSIDE_ADDRESS;
  let h: IngestHarness | undefined;
  const sockets: OpenSocket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.socket.destroy();
    await h?.stop();
    h = undefined;
  });

  async function open(n: number, from: string): Promise<OpenSocket[]> {
    const opened: OpenSocket[] = [];
    for (let i = 0; i < n; i++) opened.push(await openSocket("127.0.0.1", h!.port, from === "127.0.0.1" ? undefined : from));
    sockets.push(...opened);
    return opened;
  }

  it("refuses the 17th connection from one address at once, keeps the 16, admits the node's own address, and admits again once one closed", async () => {
    h = await startIngest({ handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS, maxConnectionsPerAddress: 16 }, "127.0.0.1");
    const sixteen = await open(16, outside);
    await waitFor("16 admitted", () => h!.ingest.connections().remote === 16);

    const [seventeenth] = await open(1, outside);
    await allBy("the 17th connection refused", [seventeenth!.closed], 5000);
    expect(h.refusals).toEqual([expect.objectContaining({ reason: "address-limit", address: outside })]);
    expect(sixteen.every((s) => !s.socket.destroyed)).toBe(true);
    expect(h.ingest.connections().remote).toBe(16);

    await open(3, "127.0.0.1");
    await waitFor("the node's own address admitted beside the capped address", () => h!.ingest.connections().open === 19);

    sixteen[0]!.socket.destroy();
    await waitFor("the closed one released", () => h!.ingest.connections().remote === 15);
    const [again] = await open(1, outside);
    await waitFor("a new one admitted", () => h!.ingest.connections().remote === 16);
    expect(again!.socket.destroyed).toBe(false);
    expect(h.refusals).toHaveLength(1);
  });

  it("refuses connections over the total cap for other hosts, still admitting the node's own address", async () => {
    h = await startIngest({ handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS, maxConnectionsPerAddress: 16, maxConnections: 5 }, "127.0.0.1");
    const five = await open(5, outside);
    await waitFor("5 admitted", () => h!.ingest.connections().remote === 5);
    const [sixth] = await open(1, outside);
    await allBy("the 6th connection refused", [sixth!.closed], 5000);
    expect(h.refusals).toEqual([expect.objectContaining({ reason: "total-limit", address: outside })]);
    expect(five.every((s) => !s.socket.destroyed)).toBe(true);
    await open(2, "127.0.0.1");
    await waitFor("the node's own address admitted", () => h!.ingest.connections().open === 7);
  });

  it("RTMPS: the timeout covers the TLS handshake and what follows it, and the cap refuses before TLS starts", async () => {
    const certDir = await mkdtemp(join(tmpdir(), "pulsecast-cert-"));
    try {
      const made = await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", join(certDir, "key.pem"), "-out", join(certDir, "cert.pem")]);
      if (made.code !== 0) throw new Error(`openssl failed: ${made.stderr}`);
      const tlsPort = await freePort();
      h = await startIngest({ handshakeTimeoutMs: 1500, maxConnectionsPerAddress: 2 }, "127.0.0.1", { port: tlsPort, cert: join(certDir, "cert.pem"), key: join(certDir, "key.pem") });
      // no ClientHello at all
      const silent = await openSocket("127.0.0.1", tlsPort);
      sockets.push(silent);
      // a complete TLS handshake, then no RTMP
      const secured = tlsConnect({ host: "127.0.0.1", port: tlsPort, rejectUnauthorized: false });
      secured.on("error", () => {});
      secured.resume();
      await new Promise<void>((r) => secured.once("secureConnect", () => r()));
      const securedClosed = new Promise<number>((r) => secured.once("close", () => r(0)));
      // over the per-address cap: refused on arrival
      for (let i = 0; i < 2; i++) sockets.push(await openSocket("127.0.0.1", tlsPort, outside));
      await waitFor("the two admitted", () => h!.ingest.connections().remote === 2);
      const overCap = await openSocket("127.0.0.1", tlsPort, outside);
      sockets.push(overCap);
      await allBy("the RTMPS connection over the cap refused", [overCap.closed], 5000);
      expect(h.refusals).toContainEqual(expect.objectContaining({ reason: "address-limit", address: outside }));
      await allBy("idle RTMPS connections closed", [silent.closed, securedClosed], 1500 + 4000);
      expect(h.refusals.filter((r) => r.reason === "handshake-timeout").length).toBeGreaterThanOrEqual(2);
    } finally {
      await rm(certDir, { recursive: true, force: true });
    }
  });
});
