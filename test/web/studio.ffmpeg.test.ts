import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsToHttpBridge, type NatsToHttpBridgeProcess } from "../helpers/bridges.ts";
import { launchChromium, newContext, openPage, screenshot, tokenFragment } from "../helpers/browser.ts";
import { type EdgeServer, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { publishTestSource } from "../helpers/ffmpeg.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import type { GroupProcess } from "../helpers/process.ts";
import { type MediaFixture, startMediaFixture } from "../media/fixture.ts";

// The studio page in Chromium: create a stream through the streams API, publish to the server and key the page
// shows (as OBS would), see it go from "waiting for signal" to live with renditions, see a viewer, moderate
// the viewer's chat, rotate the key.
//
// WAITING FOR THE STREAMS API: when this edge has no `POST /streams` (404), the test is skipped with that note.
// It needs no change once the API is merged.
describe("studio page goes live (Chromium)", () => {
  let media: MediaFixture;
  let edge: EdgeServer;
  let bridge: NatsToHttpBridgeProcess;
  let browser: Browser;
  let publisher: GroupProcess | null = null;
  let streamsApi = false;

  beforeAll(async () => {
    media = await startMediaFixture();
    edge = await startEdge({ RTMP_BASE_URL: `${media.rtmpBase}/live` });
    const probe = await fetch(`${edge.url}/streams`, {
      method: "POST",
      headers: { authorization: `Bearer ${await mintHs256(TEST_SECRETS.JWT_SECRET, { sub: "probe", claims: { role: "broadcaster" } })}`, "content-type": "application/json" },
      body: "{}",
    });
    streamsApi = probe.status !== 404;
    if (!streamsApi) return;
    bridge = await startNatsToHttpBridge({ nats: media.nats, edgeUrl: `${edge.url}/hooks/events` });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await publisher?.stop();
    await browser?.close();
    await bridge?.stop();
    await edge?.stop();
    await media?.stop();
  });

  it("creates a stream, shows the OBS settings, goes live, moderates, rotates the key", async (ctx) => {
    if (!streamsApi) return ctx.skip("waiting for the streams API: POST /streams answers 404 on this branch");
    const { page, errors } = await openPage(await newContext(browser), `${edge.url}/studio${await tokenFragment("caster", { role: "broadcaster" })}`);
    await page.getByLabel("Title").fill("Browser test stream");
    await page.getByRole("button", { name: "Create a stream" }).click();
    await expect.poll(() => page.locator("#stream-panel").isVisible(), { timeout: 15_000 }).toBe(true);
    await expect.poll(() => page.locator("#studio-status").getAttribute("data-status")).toBe("waiting");
    const server = (await page.locator("#rtmp-url").textContent())!;
    const key = (await page.locator("#stream-key").textContent())!;
    expect(server).toMatch(/^rtmps?:\/\//);
    expect(key.length).toBeGreaterThan(8);

    publisher = publishTestSource(`${server.replace(/\/$/, "")}/${key}`, { size: "640x360" });
    await expect.poll(() => page.locator("#studio-status").getAttribute("data-status"), { timeout: 90_000 }).toBe("live");
    await expect.poll(() => page.locator("#renditions").textContent(), { timeout: 30_000 }).not.toBe("—");

    const watchUrl = await page.locator("#watch-link").getAttribute("href");
    const viewer = (await openPage(await newContext(browser, { phone: true }), `${edge.url}${watchUrl}${await tokenFragment("fan")}`)).page;
    await expect.poll(() => page.locator("#viewers").textContent(), { timeout: 15_000 }).toBe("1");
    await viewer.getByRole("textbox", { name: "Message" }).fill("spam spam");
    await viewer.getByRole("button", { name: "Send" }).click();
    await page.getByRole("button", { name: "Delete message from fan" }).click();
    await expect.poll(() => viewer.locator("#messages li .text").allTextContents(), { timeout: 10_000 }).toEqual(["(message deleted)"]);
    await page.locator("details.people summary").click();
    await page.getByRole("button", { name: "Ban fan" }).click();
    await expect.poll(() => viewer.locator("#alerts").textContent(), { timeout: 10_000 }).toContain("banned");
    await screenshot(page, "studio-live");

    await page.getByRole("button", { name: "Rotate key" }).click();
    await expect.poll(() => page.locator("#stream-key").textContent(), { timeout: 10_000 }).not.toBe(key);
    expect(errors.filter((e) => !e.includes("status of 404"))).toEqual([]);
  });
});
