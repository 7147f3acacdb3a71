import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newContext, openPage, screenshot, tokenFragment } from "../helpers/browser.ts";
import type { EdgeServer } from "../helpers/edge.ts";
import { publishTestSource } from "../helpers/ffmpeg.ts";
import type { GroupProcess } from "../helpers/process.ts";
import type { MediaFixture } from "../media/fixture.ts";
import { type LiveWebStack, startLiveWebStack } from "./live-stack.ts";

// A live FFmpeg publish, end to end into Chromium: the media node (real RTMP ingest and transcode), its
// stream.* events over NATS and the NATS->HTTP bridge into the edge's room, whose welcome and event frames hand
// the watch page the playback URL. The page plays it (currentTime advances, the live badge shows) and follows
// the stream to its end and to its recording without a reload.
describe("watch page plays a live publish (Chromium)", () => {
  let stack: LiveWebStack | undefined;
  let media: MediaFixture;
  let edge: EdgeServer;
  let browser: Browser;
  let publisher: GroupProcess | null = null;

  beforeAll(async () => {
    stack = await startLiveWebStack();
    ({ media, edge, browser } = stack);
  });
  afterAll(async () => {
    await publisher?.stop();
    await stack?.stop();
  });

  it("plays with the live badge, then shows the end", async () => {
    const streamId = `web-live-${Date.now().toString(36)}`;
    const ctx = await newContext(browser);
    // The viewer is there before the broadcast: the page must pick the stream up when it starts.
    const { page, errors } = await openPage(ctx, `${edge.url}/watch/${streamId}${await tokenFragment("viewer-1", { role: "viewer" })}`);
    await expect.poll(() => page.locator("#stream-status").getAttribute("data-status"), { timeout: 15_000 }).toBe("none");

    publisher = publishTestSource(`${media.rtmpBase}/live/${streamId}?token=${await media.token(streamId)}`, { size: "640x360" });
    await expect.poll(() => page.locator("#stream-status").getAttribute("data-status"), { timeout: 90_000 }).toBe("live");
    const currentTime = () => page.locator("#video").evaluate((v: HTMLVideoElement) => v.currentTime);
    await expect.poll(currentTime, { timeout: 60_000 }).toBeGreaterThan(0);
    const first = await currentTime();
    await expect.poll(currentTime, { timeout: 30_000 }).toBeGreaterThan(first + 2);
    await expect.poll(() => page.locator("#live-badge").isVisible()).toBe(true);
    expect(await page.locator("#quality option").allTextContents()).toEqual(expect.arrayContaining(["Auto", "360p", "240p"]));
    await screenshot(page, "watch-live");

    // Paused, the viewer falls behind the live edge: the badge says so and "Go to live" brings them back.
    await page.locator("#video").evaluate((v: HTMLVideoElement) => v.pause());
    await expect.poll(() => page.getByRole("button", { name: "Go to live" }).isVisible(), { timeout: 60_000 }).toBe(true);
    expect(await page.locator("#live-badge").textContent()).toBe("LIVE (behind)");
    await screenshot(page, "watch-live-behind");
    await page.getByRole("button", { name: "Go to live" }).click();
    await expect.poll(() => page.getByRole("button", { name: "Go to live" }).isVisible(), { timeout: 20_000 }).toBe(false);
    expect(await page.locator("#live-badge").textContent()).toBe("LIVE");

    await publisher.stop();
    publisher = null;
    await expect.poll(() => page.locator("#stream-status").getAttribute("data-status"), { timeout: 60_000 }).toMatch(/^(ended|recording)$/);
    await expect.poll(() => page.locator("#live-badge").isVisible()).toBe(false);
    await screenshot(page, "watch-ended");
    // The recording follows (stream.ended carries it): offered, and it plays from the start.
    await expect.poll(() => page.locator("#stream-status").getAttribute("data-status"), { timeout: 60_000 }).toBe("recording");
    await page.getByRole("button", { name: "Watch the recording" }).click();
    type Handle = { pulsecast: { player: { currentUrl: string | null }; room: { stream?: { vodUrl?: string } } } };
    const urls = await page.evaluate(() => ({ playing: (window as unknown as Handle).pulsecast.player.currentUrl, vod: (window as unknown as Handle).pulsecast.room.stream?.vodUrl }));
    expect(urls.vod).toMatch(/^http:/);
    expect(urls.playing).toBe(urls.vod);
    await expect.poll(() => page.locator("#video").evaluate((v: HTMLVideoElement) => (v.currentSrc.startsWith("blob:") || v.currentSrc !== "") && v.currentTime > 1), { timeout: 30_000 }).toBe(true);
    await screenshot(page, "watch-recording");
    expect(errors.filter((e) => !e.includes("status of 404"))).toEqual([]);
  });
});
