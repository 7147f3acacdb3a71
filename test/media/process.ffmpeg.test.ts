// The node as the lead's start script runs it: `node media-node/src/main.ts` with settings from env. Ready on
// /healthz, serves a live stream from the fs driver over its own HTTP, and on SIGTERM to the node alone drains:
// the broadcast is handed over, and as no other node takes it over (a fleet of one) the node ends it (ENDLIST),
// stops its FFmpeg and exits 0.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintPublishToken } from "../../shared/tokens/publish-token.ts";
import { ROOT, TEST_SECRETS } from "../helpers/edge.ts";
import { publishTestSource } from "../helpers/ffmpeg.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";
import { type GroupProcess, run, spawnGroup } from "../helpers/process.ts";
import { waitFor } from "../helpers/wait.ts";
import { parsePlaylist } from "../helpers/hls.ts";

describe("media node process", () => {
  let nats: NatsServer;
  let node: GroupProcess;
  let publisher: GroupProcess | undefined;
  let root: string;
  let http: string;
  let ops: string;
  let rtmp: string;

  beforeAll(async () => {
    const [rtmpPort, httpPort, opsPort] = [await freePort(), await freePort(), await freePort()];
    ops = `http://127.0.0.1:${opsPort}`;
    nats = await startNats();
    root = await mkdtemp(join(tmpdir(), "pulsecast-node-"));
    http = `http://127.0.0.1:${httpPort}`;
    rtmp = `rtmp://127.0.0.1:${rtmpPort}`;
    node = spawnGroup(process.execPath, [join(ROOT, "media-node/src/main.ts")], {
      cwd: ROOT,
      env: {
        ...process.env,
        ...nats.env("media-node"),
        MEDIA_OPS_PORT: String(opsPort),
        PUBLISH_TOKEN_SECRET: TEST_SECRETS.PUBLISH_TOKEN_SECRET,
        MEDIA_RTMP_PORT: String(rtmpPort),
        MEDIA_HTTP_PORT: String(httpPort),
        MEDIA_WORK_DIR: join(root, "work"),
        MEDIA_LADDER: "240p",
        MEDIA_SEGMENT_S: "1",
        MEDIA_X264_PRESET: "ultrafast",
        // SIGTERM drains: the broadcast is handed over, and ended here when no other node takes it in this long.
        MEDIA_RECONNECT_GRACE_S: "1",
        STORAGE_DRIVER: "fs",
        STORAGE_FS_DIR: join(root, "store"),
        OUTBOX_DIR: join(root, "outbox"),
      },
    });
    await node.waitForOutput(/"msg":"media node ready"/, 30_000);
  });
  afterAll(async () => {
    await publisher?.kill();
    await node?.stop();
    await nats?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("is ready when RTMP, storage and NATS answer, and logs JSON lines", async () => {
    const res = await fetch(`${ops}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ready" });
    const lines = node.output().split("\n").filter((l) => l.startsWith("{"));
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(() => JSON.parse(l)).not.toThrow();
  });

  it("serves the live stream over its HTTP (fs driver) and ends it cleanly on SIGTERM", async () => {
    const token = await mintPublishToken(TEST_SECRETS.PUBLISH_TOKEN_SECRET, { sid: "proc", app: "live", scope: "publish", exp: Math.floor(Date.now() / 1000) + 600 });
    publisher = publishTestSource(`${rtmp}/live/proc?token=${token}`, { size: "426x240" });
    const live = await node.waitForOutput(/"msg":"stream is live"[^\n]*"playbackUrl":"([^"]+)"/, 30_000);
    const playbackUrl = live[1]!;
    expect(playbackUrl.startsWith(`${http}/media/live/proc/`)).toBe(true);
    const master = await fetch(playbackUrl);
    expect(master.status).toBe(200);
    expect(master.headers.get("content-type")).toBe("application/vnd.apple.mpegurl");
    expect(master.headers.get("access-control-allow-origin")).toBe("*");
    const rungUrl = new URL("240p/index.m3u8", playbackUrl).href;
    const rung = await fetch(rungUrl);
    expect(rung.status).toBe(200);
    const rungPlaylist = parsePlaylist(await rung.text());
    const seg = await fetch(new URL(rungPlaylist.segments[0].uri, rungUrl));
    expect(seg.status).toBe(200);
    expect(seg.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");

    const ffmpegPids = async () => (await run("pgrep", ["-P", String(node.child.pid), "ffmpeg"])).stdout.trim().split("\n").filter(Boolean);
    expect(await ffmpegPids()).toHaveLength(1); // one FFmpeg for the one stream
    process.kill(node.child.pid!, "SIGTERM"); // the node alone: it must stop its children itself
    expect(await node.exited).toBe(0);
    expect(node.output()).toMatch(/"msg":"stream ended"[^\n]*"reason":"node-shutdown"/);
    await waitFor("no FFmpeg of the node left", async () => (await run("pgrep", ["-f", "live/proc\\?pull="])).stdout.trim() === "", 5_000);
    const final = await run("bash", ["-c", `cat ${join(root, "store")}/live/proc/*/240p/index.m3u8`]);
    expect(final.stdout).toContain("#EXT-X-ENDLIST");
  });
});
