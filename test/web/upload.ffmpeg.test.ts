import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHttpToNatsBridge, startNatsToHttpBridge, type HttpToNatsBridgeProcess, type NatsToHttpBridgeProcess } from "../helpers/bridges.ts";
import { launchChromium, newContext, openPage, screenshot, tokenFragment } from "../helpers/browser.ts";
import { type EdgeServer, startEdge } from "../helpers/edge.ts";
import { run } from "../helpers/process.ts";
import { type MediaFixture, startMediaFixture } from "../media/fixture.ts";

// The upload page in Chromium: a real video file through tus with progress, processing progress until playable,
// then the watch page plays it and shows storyboard thumbnails when the pointer hovers the seek bar.
//
// WAITING FOR THE VIDEOS API: when this edge has no tus endpoint at `/videos` (404), the test is skipped with
// that note. It needs no change once the API is merged.
describe("upload page to playback (Chromium)", () => {
  let media: MediaFixture;
  let edge: EdgeServer;
  let toEdge: NatsToHttpBridgeProcess;
  let toNats: HttpToNatsBridgeProcess;
  let browser: Browser;
  let dir: string;
  let videosApi = false;

  beforeAll(async () => {
    media = await startMediaFixture();
    toNats = await startHttpToNatsBridge({ nats: media.nats });
    edge = await startEdge({ BRIDGE_URL: toNats.url });
    videosApi = (await fetch(`${edge.url}/videos`, { method: "OPTIONS", headers: { "tus-resumable": "1.0.0" } })).status !== 404;
    if (!videosApi) return;
    toEdge = await startNatsToHttpBridge({ nats: media.nats, edgeUrl: `${edge.url}/hooks/events` });
    browser = await launchChromium();
    dir = await mkdtemp(join(tmpdir(), "pulsecast-upload-"));
    const made = await run("ffmpeg", ["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440", "-t", "8", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", join(dir, "clip.mp4")]);
    if (made.code !== 0) throw new Error(made.stderr);
  });
  afterAll(async () => {
    await browser?.close();
    await toEdge?.stop();
    await edge?.stop();
    await toNats?.stop();
    await media?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("uploads with progress, follows processing, plays with trick-play thumbnails", async (ctx) => {
    if (!videosApi) return ctx.skip("waiting for the videos API: the tus endpoint /videos answers 404 on this branch");
    const { page, errors } = await openPage(await newContext(browser), `${edge.url}/upload${await tokenFragment("uploader")}`);
    await page.locator("#file").setInputFiles({ name: "clip.mp4", mimeType: "video/mp4", buffer: await readFile(join(dir, "clip.mp4")) });
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
