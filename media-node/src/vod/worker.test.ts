// The VOD worker against a real nats-server (authorization on, the worker as the media-node user), without
// FFmpeg: what it does with jobs it cannot or need not process. A job whose node vanished on its last attempt
// still ends as media.failed (the extra delivery announces it); garbage is removed without a retry loop.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Envelope, makeEvent } from "../../../shared/envelope.ts";
import { type NatsServer, startNats } from "../../../test/helpers/nats.ts";
import { waitFor } from "../../../test/helpers/wait.ts";
import { busConfig } from "../bus/config.ts";
import { DEFAULT_STREAM_NAMES } from "../bus/nats-permissions.ts";
import { ensureEventStreams } from "../bus/streams.ts";
import { createLogger } from "../log.ts";
import { FsObjectStore, ReliableUploader } from "../storage/index.ts";
import { VodWorker } from "./worker.ts";

let nats: NatsServer;
let ops: NatsConnection;
let root: string;
const published: Envelope[] = [];

beforeAll(async () => {
  nats = await startNats();
  ops = await connect(nats.options("ops"));
  await ensureEventStreams(await ops.jetstreamManager(), busConfig());
  root = await mkdtemp(join(tmpdir(), "pulsecast-vod-worker-"));
});
afterAll(async () => {
  await ops?.close();
  await nats?.stop();
  await rm(root, { recursive: true, force: true });
});

function worker(maxAttempts: number, ackWaitMs: number): VodWorker {
  const store = new FsObjectStore({ dir: join(root, "store"), publicBaseUrl: "http://127.0.0.1:1/media" });
  const log = createLogger({ level: "error" });
  return new VodWorker({
    nodeId: "t1",
    nats: { ...busConfig(nats.settings("media-node")) },
    consumer: DEFAULT_STREAM_NAMES.jobConsumer,
    concurrency: 1,
    ackWaitMs,
    maxAttempts,
    retryDelayMs: 100,
    events: { publish: async (e) => void published.push(e) },
    publicUrl: (k) => store.publicUrl(k),
    log,
    pullExpiresMs: 1000,
    pipeline: {
      store,
      uploader: new ReliableUploader(store),
      log,
      settings: { workDir: join(root, "work"), ffmpegPath: "ffmpeg", ffprobePath: "ffprobe", keyPrefix: "vod", segmentS: 2, preset: "veryfast", ladder: { rungs: ["360p"], passthrough: false }, limits: { maxDurationS: 60, maxLongSide: 4096 } },
    },
  });
}

const jobsLeft = async () => (await (await ops.jetstreamManager()).streams.info("VOD_JOBS")).state.messages;

describe("VodWorker", () => {
  it("a job whose node vanished on its last attempt ends as media.failed on the next delivery, once", async () => {
    const first = worker(1, 1500);
    await first.start(); // declares the stream and the consumer
    await first.stop();
    const job = makeEvent("media.uploaded", { mediaId: "vid_lost", ownerId: "alice", key: "uploads/vid_lost/source" }, { source: "edge", subject: "media/vid_lost" });
    await ops.jetstream().publish("media.uploaded", JSON.stringify(job), { msgID: job.id });
    // A "node" takes the job and is never heard of again (no ack, no working()).
    const taken = await (await ops.jetstream().consumers.get("VOD_JOBS", DEFAULT_STREAM_NAMES.jobConsumer)).next({ expires: 5000 });
    expect(taken?.info.redeliveryCount).toBe(1);

    const second = worker(1, 1500);
    await second.start();
    try {
      const failed = await waitFor("media.failed for vid_lost", () => published.find((e) => e.type === "media.failed" && (e.data as { mediaId: string }).mediaId === "vid_lost"), 20_000);
      expect(failed.data).toMatchObject({ ownerId: "alice", reason: expect.stringMatching(/did not finish in 1 attempts/) });
      await waitFor("the job removed from the queue", async () => (await jobsLeft()) === 0, 10_000);
      expect(published.filter((e) => e.type === "media.failed" && (e.data as { mediaId: string }).mediaId === "vid_lost")).toHaveLength(1);
    } finally {
      await second.stop();
    }
  });

  it("a message that is not a job is removed without a retry; a job naming an unusable id fails for its owner", async () => {
    const w = worker(3, 5000);
    await w.start();
    try {
      await ops.jetstream().publish("media.uploaded", "not json at all", { msgID: "garbage-1" });
      const bad = makeEvent("media.uploaded", { mediaId: "../../etc", ownerId: "bob", key: "uploads/x/source" }, { source: "edge", subject: "media/x" });
      await ops.jetstream().publish("media.uploaded", JSON.stringify(bad), { msgID: bad.id });
      const failed = await waitFor("media.failed for the unusable id", () => published.find((e) => e.type === "media.failed" && (e.data as { ownerId: string }).ownerId === "bob"), 20_000);
      expect(failed.data).toMatchObject({ mediaId: "../../etc", reason: expect.stringMatching(/cannot name stored objects/) });
      await waitFor("both removed from the queue", async () => (await jobsLeft()) === 0, 10_000);
    } finally {
      await w.stop();
    }
  });
});
