// The RTMP connection limits as the real node process reads them from env: the handshake timeout and the
// per-address cap act on real sockets, refusals show in /metrics by reason, and a bad limit stops the start
// with a message naming it.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, TEST_SECRETS } from "../helpers/edge.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";
import { type GroupProcess, spawnGroup } from "../helpers/process.ts";
import { waitFor } from "../helpers/wait.ts";
import { allBy, OUTSIDE_ADDRESS, openSocket } from "../ingest/harness.ts";

describe("RTMP limits in the media node process", () => {
  let nats: NatsServer;
  let node: GroupProcess | undefined;
  let root: string;

  function startNode(env: Record<string, string>, ports: { rtmp: number; http: number; ops: number }): GroupProcess {
    return spawnGroup(process.execPath, [join(ROOT, "media-node/src/main.ts")], {
      cwd: ROOT,
      env: {
        ...process.env,
        ...nats.env("media-node"),
        PUBLISH_TOKEN_SECRET: TEST_SECRETS.PUBLISH_TOKEN_SECRET,
        MEDIA_RTMP_PORT: String(ports.rtmp),
        MEDIA_HTTP_PORT: String(ports.http),
        MEDIA_OPS_PORT: String(ports.ops),
        MEDIA_WORK_DIR: join(root, "work"),
        STORAGE_DRIVER: "fs",
        STORAGE_FS_DIR: join(root, "store"),
        OUTBOX_DIR: join(root, "outbox"),
        ...env,
      },
    });
  }

  beforeAll(async () => {
    nats = await startNats();
    root = await mkdtemp(join(tmpdir(), "pulsecast-rtmp-limits-"));
  });
  afterAll(async () => {
    await node?.stop();
    await nats?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("times out idle connections, caps one address, and counts both in /metrics", async () => {
    const [rtmp, http, ops] = [await freePort(), await freePort(), await freePort()];
    node = startNode({ MEDIA_RTMP_HANDSHAKE_TIMEOUT_MS: "3000", MEDIA_RTMP_MAX_CONNECTIONS_PER_ADDRESS: "2" }, { rtmp, http, ops });
    await node.waitForOutput(/"msg":"media node ready"/, 30_000);
    const outside = OUTSIDE_ADDRESS;

    const idle = await openSocket("127.0.0.1", rtmp);
    const two = [await openSocket("127.0.0.1", rtmp, outside), await openSocket("127.0.0.1", rtmp, outside)];
    // the node admits the two asynchronously; wait until its gauge shows them before the third
    const metrics = async () => (await fetch(`http://127.0.0.1:${ops}/metrics`)).text();
    await waitFor("three connections open", async () => /pulsecast_rtmp_connections 3\b/.test(await metrics()), 10_000);
    const third = await openSocket("127.0.0.1", rtmp, outside);
    await allBy("the third connection from one address refused", [third.closed], 5000);
    await allBy("idle connections closed by the 3 s handshake timeout", [idle.closed, ...two.map((s) => s.closed)], 3000 + 4000);

    // the node counts a connection out when its own side of the socket has closed, just after the client saw it
    await waitFor("every connection counted out", async () => /pulsecast_rtmp_connections 0\b/.test(await metrics()), 10_000);
    const text = await metrics();
    expect(text).toMatch(/pulsecast_rtmp_refused_total\{reason="address-limit"\} 1\b/);
    expect(text).toMatch(/pulsecast_rtmp_refused_total\{reason="handshake-timeout"\} 3\b/);
    expect(text).toMatch(/pulsecast_rtmp_connections 0\b/);
    expect(node.output()).toMatch(/"msg":"rtmp connection refused".*"reason":"address-limit"/);
  });

  it("refuses to start with an out-of-range limit, naming the setting", async () => {
    const [rtmp, http, ops] = [await freePort(), await freePort(), await freePort()];
    const bad = startNode({ MEDIA_RTMP_MAX_CONNECTIONS_PER_ADDRESS: "0", MEDIA_RTMP_HANDSHAKE_TIMEOUT_MS: "soon" }, { rtmp, http, ops });
    expect(await bad.exited).toBe(1);
    // the error record's text (its msg, or the error it carries), both problems listed at once
    const said = bad
      .output()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { level: string; msg: string; error?: { message?: string } })
      .filter((r) => r.level === "error")
      .map((r) => `${r.msg}\n${r.error?.message ?? ""}`)
      .join("\n");
    expect(said).toMatch(/MEDIA_RTMP_MAX_CONNECTIONS_PER_ADDRESS="0": must be at least 1/);
    expect(said).toMatch(/MEDIA_RTMP_HANDSHAKE_TIMEOUT_MS="soon": must be a whole number/);
  });
});
