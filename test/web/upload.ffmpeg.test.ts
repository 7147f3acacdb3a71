import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHttpToNatsBridge, startNatsToHttpBridge, type HttpToNatsBridgeProcess, type NatsToHttpBridgeProcess } from "../helpers/bridges.ts";
import { launchChromium, newContext, openPage, screenshot, tokenFragment } from "../helpers/browser.ts";
import { type EdgeServer, ROOT, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";
import { type GroupProcess, run, spawnGroup } from "../helpers/process.ts";

// The upload page in Chromium against the videos API: a real video file through tus (`POST /uploads`) with
// progress, processing progress (inbox and `GET /videos/:id`) until it is ready, then the watch page plays it and
// shows storyboard thumbnails when the pointer hovers the seek bar. Every part is real: nats-server, both
// bridges, the edge under wrangler dev (its R2 simulation holds the upload), and a media-node process whose VOD
// worker reads the source from the edge (VOD_SOURCE_URL) and serves its outputs over HTTP.
//
// This file lives in test/web/pending/, which the vitest configs exclude: it needs the videos API (tus uploads,
// GET /videos/:id, the media node's VOD worker), which is not on this branch yet.
describe("upload page to playback (Chromium)", () => {
  let root: string;
  let nats: NatsServer;
  let toNats: HttpToNatsBridgeProcess;
  let edge: EdgeServer;
  let toEdge: NatsToHttpBridgeProcess;
  let node: GroupProcess;
  let browser: Browser;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "pulsecast-upload-page-"));
    nats = await startNats();
    toNats = await startHttpToNatsBridge({ nats });
    const [rtmp, http] = [await freePort(), await freePort()];
    const mediaUrl = `http://127.0.0.1:${http}/media`;
    // Videos' playback URLs point at the node's HTTP, which serves the fs-stored outputs.
    edge = await startEdge({ BRIDGE_URL: toNats.url, PLAYBACK_BASE_URL: mediaUrl });
    toEdge = await startNatsToHttpBridge({ nats, edgeUrl: `${edge.url}/hooks/events` });
    node = spawnGroup(process.execPath, [join(ROOT, "media-node/src/main.ts")], {
      cwd: ROOT,
      env: {
        ...process.env,
        ...nats.env("media-node"),
        PUBLISH_TOKEN_SECRET: TEST_SECRETS.PUBLISH_TOKEN_SECRET,
        MEDIA_NODE_ID: "upload-page",
        MEDIA_RTMP_PORT: String(rtmp),
        MEDIA_HTTP_PORT: String(http),
        MEDIA_OPS_PORT: "0",
        MEDIA_WORK_DIR: join(root, "work"),
        OUTBOX_DIR: join(root, "outbox"),
        STORAGE_DRIVER: "fs",
        STORAGE_FS_DIR: join(root, "store"),
        MEDIA_X264_PRESET: "ultrafast",
        VOD_LADDER: "360p,240p",
        VOD_SEGMENT_S: "2",
        VOD_SOURCE_URL: `${edge.url}/internal/media`,
        VOD_SOURCE_TOKEN: TEST_SECRETS.INTERNAL_API_TOKEN,
      },
    });
    await node.waitForOutput(/"msg":"vod worker pulling jobs"/, 60_000);
    browser = await launchChromium();
    const made = await run("ffmpeg", ["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440", "-t", "8", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", join(root, "clip.mp4")]);
    if (made.code !== 0) throw new Error(made.stderr);
  });
  afterAll(async () => {
    await browser?.close();
    await node?.stop();
    await toEdge?.stop();
    await edge?.stop();
    await toNats?.stop();
    await nats?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("uploads with progress, follows processing, plays with trick-play thumbnails", async () => {
    const { page, errors } = await openPage(await newContext(browser), `${edge.url}/upload${await tokenFragment("uploader")}`);
    await page.locator("#file").setInputFiles({ name: "clip.mp4", mimeType: "video/mp4", buffer: await readFile(join(root, "clip.mp4")) });
    await expect.poll(() => page.locator("#upload-percent").textContent(), { timeout: 60_000 }).toBe("100%");
    await screenshot(page, "upload-uploaded");
    await expect.poll(() => page.locator("#processing-text").textContent(), { timeout: 180_000 }).toBe("Ready to watch.");
    await screenshot(page, "upload-ready");

    await page.getByRole("link", { name: "Watch it" }).click();
    await expect.poll(() => page.locator("#video").evaluate((v: HTMLVideoElement) => v.currentTime), { timeout: 60_000 }).toBeGreaterThan(1);
    await expect.poll(() => page.locator("#scrub").isVisible(), { timeout: 30_000 }).toBe(true);
    const bar = (await page.locator("#seek").boundingBox())!;
    await page.mouse.move(bar.x + bar.width * 0.6, bar.y + bar.height / 2);
    await expect.poll(() => page.locator("#thumb").isVisible()).toBe(true);
    expect(await page.locator("#thumb-img").evaluate((el) => getComputedStyle(el).backgroundImage)).toMatch(/^url\(/);
    await screenshot(page, "watch-video-trickplay");
    expect(errors.filter((e) => !e.includes("status of 404"))).toEqual([]);
  });
});
