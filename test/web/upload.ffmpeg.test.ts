import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, newContext, openPage, screenshot, tokenFragment } from "../helpers/browser.ts";
import { run } from "../helpers/process.ts";
import { startVodStack, type VodStack } from "../vod/stack.ts";

// The upload page in Chromium against the videos API: a real video file through tus (`POST /uploads`) with
// progress, processing progress (inbox and `GET /videos/:id`) until it is ready, then the watch page plays it and
// shows storyboard thumbnails when the pointer hovers the seek bar. Every part is real and is the VOD stack the
// pipeline's end-to-end test uses: nats-server, both bridges, the edge under wrangler dev (its R2 simulation holds
// the upload), and a media-node process whose VOD worker reads the source from the edge and stores its outputs in
// a folder it serves over HTTP. A video's playback, poster and storyboard URLs are the edge's
// `/play/<videoId>/…` (PLAYBACK_BASE_URL is the edge), which pulls from that folder (PLAYBACK_ORIGIN_URL), so
// the browser plays through the same route a deployed viewer does.
describe("upload page to playback (Chromium)", () => {
  let stack: VodStack;
  let browser: Browser;
  let clip: string;

  beforeAll(async () => {
    // A small ladder, short segments and the fastest preset keep processing quick on a loaded machine.
    stack = await startVodStack({ MEDIA_X264_PRESET: "ultrafast", VOD_LADDER: "360p,240p", VOD_SEGMENT_S: "2" });
    browser = await launchChromium();
    clip = join(stack.root, "clip.mp4");
    const made = await run("ffmpeg", ["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440", "-t", "8", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", clip]);
    if (made.code !== 0) throw new Error(made.stderr);
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it("uploads with progress, follows processing, plays with trick-play thumbnails", async () => {
    const { page, errors } = await openPage(await newContext(browser), `${stack.edge.url}/upload${await tokenFragment("uploader")}`);
    await page.locator("#file").setInputFiles({ name: "clip.mp4", mimeType: "video/mp4", buffer: await readFile(clip) });
    await expect.poll(() => page.locator("#upload-percent").textContent(), { timeout: 60_000 }).toBe("100%");
    await screenshot(page, "upload-uploaded");
    await expect.poll(() => page.locator("#processing-text").textContent(), { timeout: 180_000 }).toBe("Ready to watch.");
    await screenshot(page, "upload-ready");

    // Every HTTP failure the watch page meets, by address: the page asks the Streams API first, whose 404 for a
    // video id is expected; a 404 for the playlist, poster or storyboard is a bug and must show up here.
    const failed: string[] = [];
    page.on("response", (r) => r.status() >= 400 && failed.push(`${r.status()} ${new URL(r.url()).pathname}`));
    await page.getByRole("link", { name: "Watch it" }).click();
    await page.waitForURL(/\/watch\/vid_/);
    const videoId = decodeURIComponent(new URL(page.url()).pathname.split("/")[2] ?? "");
    expect(videoId).toMatch(/^vid_/);
    await expect.poll(() => page.locator("#video").evaluate((v: HTMLVideoElement) => v.currentTime), { timeout: 60_000 }).toBeGreaterThan(1);
    await screenshot(page, "watch-video-playing");
    await expect.poll(() => page.locator("#scrub").isVisible(), { timeout: 30_000 }).toBe(true);
    const bar = (await page.locator("#seek").boundingBox())!;
    await page.mouse.move(bar.x + bar.width * 0.6, bar.y + bar.height / 2);
    await expect.poll(() => page.locator("#thumb").isVisible()).toBe(true);
    const sprite = await page.locator("#thumb-img").evaluate((el) => getComputedStyle(el).backgroundImage);
    expect(sprite).toMatch(new RegExp(`^url\\("${stack.edge.url}/play/${videoId}/[^"]+\\.jpg"\\)$`));
    // The sprite behind the thumbnail is a real image the browser decodes, served through /play.
    const size = await page.evaluate(async (url) => {
      const img = new Image();
      img.src = url;
      await img.decode();
      return { w: img.naturalWidth, h: img.naturalHeight };
    }, sprite.slice(5, -2));
    expect(size.w).toBeGreaterThan(0);
    expect(size.h).toBeGreaterThan(0);
    await screenshot(page, "watch-video-trickplay");
    expect(failed).toEqual([`404 /streams/${videoId}`]);
    expect(errors.filter((e) => !e.includes("status of 404"))).toEqual([]);
  });
});
