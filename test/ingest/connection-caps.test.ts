// The per-address and total connection caps of the RTMP port, on real sockets against the real node-media-server.
// Connections come from this machine's non-loopback address, which is what another host looks like (loopback
// is exempt from both caps: the node's own FFmpeg pulls come from there).

import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../helpers/wait.ts";
import { allBy, type IngestHarness, nonLoopbackAddress, type OpenSocket, openSocket, startIngest } from "./harness.ts";

// long enough that nothing in these tests is closed by the timeout: every close seen here is a cap
const HANDSHAKE_TIMEOUT_MS = 30_000;

describe("RTMP connection caps", () => {
  const outside = nonLoopbackAddress();
  let h: IngestHarness | undefined;
  const sockets: OpenSocket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.socket.destroy();
    await h?.stop();
    h = undefined;
  });

  async function open(n: number, from: string): Promise<OpenSocket[]> {
    const opened: OpenSocket[] = [];
    for (let i = 0; i < n; i++) opened.push(await openSocket(from, h!.port, from === "127.0.0.1" ? undefined : from));
    sockets.push(...opened);
    return opened;
  }

  it("refuses the 17th connection from one address at once, keeps the 16, admits loopback, and admits again once one closed", async () => {
    h = await startIngest({ handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS, maxConnectionsPerAddress: 16 }, "0.0.0.0");
    const sixteen = await open(16, outside);
    await waitFor("16 admitted", () => h!.ingest.connections().remote === 16);

    const [seventeenth] = await open(1, outside);
    await allBy("the 17th connection refused", [seventeenth!.closed], 5000);
    expect(h.refusals).toEqual([expect.objectContaining({ reason: "address-limit", address: outside })]);
    expect(sixteen.every((s) => !s.socket.destroyed)).toBe(true);
    expect(h.ingest.connections().remote).toBe(16);

    await open(3, "127.0.0.1");
    await waitFor("loopback admitted beside the capped address", () => h!.ingest.connections().open === 19);

    sixteen[0]!.socket.destroy();
    await waitFor("the closed one released", () => h!.ingest.connections().remote === 15);
    const [again] = await open(1, outside);
    await waitFor("a new one admitted", () => h!.ingest.connections().remote === 16);
    expect(again!.socket.destroyed).toBe(false);
    expect(h.refusals).toHaveLength(1);
  });

  it("refuses connections over the total cap for other hosts, still admitting loopback", async () => {
    h = await startIngest({ handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS, maxConnectionsPerAddress: 16, maxConnections: 5 }, "0.0.0.0");
    const five = await open(5, outside);
    await waitFor("5 admitted", () => h!.ingest.connections().remote === 5);
    const [sixth] = await open(1, outside);
    await allBy("the 6th connection refused", [sixth!.closed], 5000);
    expect(h.refusals).toEqual([expect.objectContaining({ reason: "total-limit", address: outside })]);
    expect(five.every((s) => !s.socket.destroyed)).toBe(true);
    await open(2, "127.0.0.1");
    await waitFor("loopback admitted", () => h!.ingest.connections().open === 7);
  });
});
