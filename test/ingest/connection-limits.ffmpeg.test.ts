// The RTMP port under connection abuse: idle sockets, a half handshake, garbage and a flood from one address,
// while a real broadcaster (FFmpeg) connects and publishes in the middle of it. Every abusive connection is
// closed by the handshake timeout (or refused by the per-address cap as it arrives); the broadcaster is not.

import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publishTestSource } from "../helpers/ffmpeg.ts";
import type { GroupProcess } from "../helpers/process.ts";
import { waitFor } from "../helpers/wait.ts";
import { allBy, type IngestHarness, OUTSIDE_ADDRESS, type OpenSocket, openSocket, startIngest } from "./harness.ts";

const HANDSHAKE_TIMEOUT_MS = 2000;
const PER_ADDRESS = 16;
// generous: the machine may be loaded (2 cores, FFmpeg beside), and the point is "closed", not "closed on the ms"
const MARGIN_MS = 4000;

describe("RTMP connection limits with a real broadcaster", () => {
  let h: IngestHarness;
  let publisher: GroupProcess | undefined;
  const outside = OUTSIDE_ADDRESS;

  beforeAll(async () => {
    h = await startIngest({ handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS, maxConnectionsPerAddress: PER_ADDRESS }, "127.0.0.1");
  });
  afterAll(async () => {
    await publisher?.kill();
    await h?.stop();
  });

  it("closes 100 idle sockets, a half handshake, 64 KiB of garbage and a one-address flood; the broadcaster publishes throughout", async () => {
    const idle = await Promise.all(Array.from({ length: 100 }, () => openSocket("127.0.0.1", h.port)));

    const half = await openSocket("127.0.0.1", h.port);
    half.socket.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(700, 1)])); // C0 + part of C1, then silence

    const garbage = await openSocket("127.0.0.1", h.port);
    const junk = Buffer.alloc(64 * 1024);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919 + 13) % 256;
    garbage.socket.write(junk);

    // one remote address holding as many connections as it may, and one more
    const flood: OpenSocket[] = [];
    for (let i = 0; i < PER_ADDRESS; i++) flood.push(await openSocket("127.0.0.1", h.port, outside));
    await waitFor("the flood admitted", () => h.ingest.connections().remote === PER_ADDRESS, 10_000);
    const overCap = await openSocket("127.0.0.1", h.port, outside);
    const overCapClosedAfter = await allBy("the connection over the per-address cap refused", [overCap.closed], MARGIN_MS);
    expect(overCapClosedAfter[0]).toBeLessThan(HANDSHAKE_TIMEOUT_MS); // refused on arrival, not timed out
    expect(h.refusals).toContainEqual(expect.objectContaining({ reason: "address-limit", address: outside }));

    // A real broadcaster connects in the middle of all this and is accepted.
    const published = once(h.ingest, "publish", { signal: AbortSignal.timeout(30_000) });
    const publisherStarted = Date.now();
    publisher = publishTestSource(`rtmp://127.0.0.1:${h.port}/live/steady?token=${await h.token("steady")}`, { size: "320x180", audio: false, rate: 15 });
    await published;
    expect(h.ingest.isPublishing("steady")).toBe(true);

    // Every abusive connection is closed by the deadline (closes are events; the deadline bounds the wait).
    const abusive = [...idle, half, garbage, ...flood];
    const closedAfter = await allBy("abusive connections closed by the handshake timeout", abusive.map((s) => s.closed), HANDSHAKE_TIMEOUT_MS + MARGIN_MS);
    // the idle ones and the flood were closed by the timeout, not by anything earlier
    for (const ms of [...closedAfter.slice(0, 100), ...closedAfter.slice(102)]) expect(ms).toBeGreaterThanOrEqual(HANDSHAKE_TIMEOUT_MS - 100);
    expect(h.refusals.filter((r) => r.reason === "handshake-timeout").length).toBeGreaterThanOrEqual(100 + PER_ADDRESS);

    // The broadcaster outlives the handshake timeout: an accepted publish is never timed out.
    const untilPastItsDeadline = publisherStarted + HANDSHAKE_TIMEOUT_MS + 1000 - Date.now();
    if (untilPastItsDeadline > 0) await new Promise((r) => setTimeout(r, untilPastItsDeadline));
    const bytes = h.ingest.bytesIn();
    await waitFor("the broadcaster still sending", () => h.ingest.bytesIn() > bytes, 10_000);
    expect(h.ingest.isPublishing("steady")).toBe(true);
    expect(publisher.child.exitCode).toBeNull();
    // the server side holds nothing of the abusive connections: only the broadcaster's is open
    await waitFor("server-side connections released", () => h.ingest.connections().open === 1, 5_000);
    expect(h.ingest.connections()).toEqual({ open: 1, remote: 0 });
    expect(h.logs.some((l) => l.msg === "rtmp connection refused" && l.reason === "handshake-timeout")).toBe(true);
  });
});
