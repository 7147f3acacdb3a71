import { createServer, type Server } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../../test/helpers/ports.ts";
import { createLogger, type LogFields } from "../log.ts";
import { createAuthorizer } from "./authorize.ts";
import { hintsOf, RtmpIngest } from "./rtmp-server.ts";

describe("RtmpIngest (node-media-server contained)", () => {
  const logs: LogFields[] = [];
  const log = createLogger({ level: "debug", sink: (_l, r) => void logs.push(r) });
  let dir: string;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("rejects start() on a port in use instead of exiting the process, then starts on a free one", async () => {
    dir = await mkdtemp(join(tmpdir(), "pulsecast-nms-"));
    const blocker: Server = createServer();
    const busy = await new Promise<number>((r) => blocker.listen(0, "127.0.0.1", () => r((blocker.address() as { port: number }).port)));
    const authorize = createAuthorizer({ apps: ["live"], secret: "unit-test-secret-0123456789" });
    const first = new RtmpIngest({ host: "127.0.0.1", port: busy, storeDir: dir, authorize, log });
    await expect(first.start()).rejects.toThrow(/EADDRINUSE/);
    blocker.close();

    const port = await freePort();
    const ingest = new RtmpIngest({ host: "127.0.0.1", port, storeDir: dir, authorize, log });
    await ingest.start();
    await expect(ingest.ping()).resolves.toBeUndefined();
    expect(ingest.pullUrl("live", "abc")).toBe(`rtmp://127.0.0.1:${port}/live/abc?pull=${ingest.pullKey}`);
    // NMS's own prose went to our logger at debug level, not to the console
    expect(logs.some((l) => l.component === "node-media-server" && l.level === "debug")).toBe(true);
    // and it no longer installs SIGINT/SIGTERM handlers that would exit the process
    expect(process.listenerCount("SIGTERM")).toBe(0);
    await ingest.stop();
    await expect(ingest.ping(500)).rejects.toThrow(/RTMP port/);
  });

  it("reads source hints only once the publisher's metadata arrived", () => {
    const before = { videoCodec: 0, videoWidth: 0, videoHeight: 0, videoFramerate: 0, audioCodec: 0, audioChannels: 0, audioSamplerate: 0 };
    expect(hintsOf(before)).toBeUndefined();
    expect(hintsOf({ ...before, videoCodec: 7, videoWidth: 1280, videoHeight: 720, videoFramerate: 30, audioCodec: 10, audioChannels: 2, audioSamplerate: 48000 })).toEqual({
      video: { width: 1280, height: 720, fps: 30, codecId: 7 },
      audio: { codecId: 10, channels: 2, sampleRate: 48000 },
    });
    // audio-only: metadata without video fields
    expect(hintsOf({ ...before, videoCodec: undefined, videoWidth: undefined, videoHeight: undefined, audioCodec: 10 })).toEqual({ audio: { codecId: 10, channels: 0, sampleRate: 0 } });
  });
});
