import { once } from "node:events";
import { createRequire } from "node:module";
import { connect, createServer, type Server, type Socket } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../../test/helpers/ports.ts";
import { createLogger, type LogFields } from "../log.ts";
import { createAuthorizer } from "./authorize.ts";
import { hangUp, hintsOf, pullHost, releasePublisherSlot, RtmpIngest } from "./rtmp-server.ts";

const require = createRequire(import.meta.url);

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
    // a new credential per call (one per FFmpeg/ffprobe start), over loopback
    const a = ingest.pullUrl("live", "abc");
    const b = ingest.pullUrl("live", "abc");
    expect(a).toMatch(new RegExp(`^rtmp://127\\.0\\.0\\.1:${port}/live/abc\\?pull=[A-Za-z0-9_-]{24}$`));
    expect(b).not.toBe(a);
    // NMS's own prose went to our logger at debug level, not to the console
    expect(logs.some((l) => l.component === "node-media-server" && l.level === "debug")).toBe(true);
    // and it no longer installs SIGINT/SIGTERM handlers that would exit the process
    expect(process.listenerCount("SIGTERM")).toBe(0);
    await ingest.stop();
    await expect(ingest.ping(500)).rejects.toThrow(/RTMP port/);
  });

  it("pulls over loopback, and refuses to start on an address loopback cannot reach", async () => {
    expect(pullHost("0.0.0.0")).toBe("127.0.0.1");
    expect(pullHost("::")).toBe("127.0.0.1");
    expect(pullHost("127.0.0.1")).toBe("127.0.0.1");
    expect(pullHost("::1")).toBe("::1");
    expect(pullHost("localhost")).toBe("localhost");
    expect(pullHost("192.0.2.10")).toBeUndefined();
    expect(pullHost("ingest.example.com")).toBeUndefined();
    const authorize = createAuthorizer({ apps: ["live"], secret: "unit-test-secret-0123456789" });
    const outside = new RtmpIngest({ host: "192.0.2.10", port: 1, storeDir: dir, authorize, log });
    await expect(outside.start()).rejects.toThrow(/neither loopback nor a wildcard/);
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

  it("hangs up on a peer that ignores the FIN: the connection is gone, not half-open and still read", async () => {
    const server = createServer();
    const accepted = once(server, "connection") as Promise<[Socket]>;
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    // allowHalfOpen: the client does not end its side when the server's FIN arrives, like a hostile publisher
    const client = connect({ host: "127.0.0.1", port: (server.address() as { port: number }).port, allowHalfOpen: true });
    client.on("error", () => {});
    const [socket] = await accepted;
    const serverSideClosed = once(socket, "close");
    // NMS's close() is socket.end(); on its own that leaves the socket open for reading while the client holds on
    hangUp({ close: () => socket.end(), socket });
    await serverSideClosed;
    expect(socket.destroyed).toBe(true);
    client.destroy();
    server.close();
  });

  it("releases the NMS publisher slot a refused session holds, so the real broadcaster is not told 'already has a publisher'", () => {
    // node-media-server's own BroadcastServer, as a session's `broadcast` is in NMS. (Its postPublish is not used:
    // it emits on NMS's process-wide emitter, where the RtmpIngest above still listens.)
    const BroadcastServer = require("node-media-server/src/server/broadcast_server.js") as new (path: string) => {
      publisher: unknown;
      rtmpVideoHeader: Buffer | null;
      donePublish(session: object): void;
      getPublishStatus(): string;
    };
    const broadcast = new BroadcastServer("/live/k-slot");
    const refused = { id: "refused", ip: "127.0.0.1:50001", streamPath: "/live/k-slot", broadcast };
    broadcast.publisher = refused; // what NMS's postPublish did before our async token check refused it
    broadcast.rtmpVideoHeader = Buffer.from("the refused sender's header");
    // someone else's slot is never touched
    releasePublisherSlot({ id: "other", ip: "127.0.0.1:50002", streamPath: "/live/k-slot", broadcast });
    expect(broadcast.publisher).toBe(refused);

    releasePublisherSlot(refused);
    expect(broadcast.publisher).toBeNull(); // the next publisher is not told "already has a publisher"
    expect(broadcast.rtmpVideoHeader).toBeNull(); // nothing of the refused sender is left to serve to FFmpeg
    broadcast.donePublish(refused); // NMS's own close handling afterwards starts no 30 s resume window
    expect(broadcast.getPublishStatus()).toBe("idle");
  });
});
