// A node shutdown that outlasts its streams' timeout: storage is unreachable, so the streams cannot finish in
// the 15 s they get; once the uploader is closed and refuses what is left, each stream still ends, its
// stream.ended must reach NATS before the bus stops, and the files the uploader refused stay on disk.
// (Its own file: node-media-server allows one ingest per process, so one media fixture per test file.)

import { once } from "node:events";
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LiveSession } from "../../media-node/src/live/session.ts";
import { loadStorageConfig } from "../../media-node/src/storage/index.ts";
import { publishTestSource } from "../helpers/ffmpeg.ts";
import { freePort } from "../helpers/ports.ts";
import type { GroupProcess } from "../helpers/process.ts";
import { waitFor } from "../helpers/wait.ts";
import { type MediaFixture, startMediaFixture } from "./fixture.ts";

describe("node shutdown while storage is down", () => {
  let fx: MediaFixture;
  let publisher: GroupProcess | undefined;

  beforeAll(async () => {
    // Nothing listens at the endpoint: every upload keeps failing until the uploader is closed.
    const storage = loadStorageConfig({
      STORAGE_DRIVER: "s3",
      S3_ENDPOINT: `http://127.0.0.1:${await freePort()}`,
      S3_REGION: "us-east-1",
      S3_BUCKET: "media",
      S3_ACCESS_KEY_ID: "test",
      S3_SECRET_ACCESS_KEY: "test-secret",
      S3_FORCE_PATH_STYLE: "true",
      S3_REQUEST_TIMEOUT_MS: "1000",
      S3_MAX_ATTEMPTS: "1",
      UPLOAD_RETRY_BASE_MS: "100",
      UPLOAD_RETRY_MAX_MS: "500",
    });
    fx = await startMediaFixture({ MEDIA_LADDER: "240p", MEDIA_SEGMENT_S: "1" }, { storage });
  });
  afterAll(async () => {
    await publisher?.kill();
    await fx?.stop();
  });

  it("a stream that outlives the shutdown timeout still reports stream.ended, and keeps its unstored files", async () => {
    const started = once(fx.node.live, "session") as Promise<[LiveSession]>;
    publisher = publishTestSource(`${fx.rtmpBase}/live/late?token=${await fx.token("late")}`, { size: "426x240" });
    const [session] = await started;
    await waitFor("segments waiting for storage", () => fx.node.uploader.stats().pending >= 3, 30_000);
    const workRoot = join(fx.node.config.workDir, `late-${session.broadcastId}`);

    // The streams' 15 s run out (their segments cannot be stored), then the 10 s drain: the closed uploader
    // refuses what is left, and only then can the session end. Its events must still beat the bus's stop.
    await fx.node.stop();
    // stop() waited for the session's whole end (end() is idempotent: this is the same promise), events included
    let settled = false;
    void session.end("node-shutdown").then(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    expect(settled, "the session's end was still running when stop() returned").toBe(true);
    expect(fx.logs.filter((l) => l.msg === "event not published")).toEqual([]);
    await fx.waitForEvent("stream.ended", (e) => e.data.streamId === "late" && e.data.reason === "node-shutdown", 10_000);
    // Refused segments are the files the upload journal points at: the work dir must survive the session's end.
    expect(existsSync(workRoot), workRoot).toBe(true);
    const files = (await readdir(workRoot, { recursive: true })).filter((f) => f.endsWith(".m4s"));
    expect(files.length).toBeGreaterThan(0);
  });
});
