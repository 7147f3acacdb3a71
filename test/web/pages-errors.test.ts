import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, newContext, openPage, screenshot, tokenFragment } from "../helpers/browser.ts";
import { type EdgeServer, startEdge } from "../helpers/edge.ts";

// Every page says what is wrong in words, never a blank page: no sign-in without dev sign-in, a banned user,
// and the studio and upload pages on an edge whose streams/videos APIs refuse.
describe("pages show errors in words (Chromium)", () => {
  let edge: EdgeServer;
  let browser: Browser;

  beforeAll(async () => {
    // A small upload limit so the videos API refuses the upload page's file (413 upload_too_large) before any
    // byte is stored: the refusal the page must put in words.
    edge = await startEdge({ VIDEO_MAX_UPLOAD_BYTES: String(32 * 1024) });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await edge?.stop();
  });

  it("no token and no dev sign-in: the page explains how to sign in", async () => {
    const { page } = await openPage(await newContext(browser), `${edge.url}/watch/some-room`);
    await expect.poll(() => page.locator("#signin").textContent(), { timeout: 10_000 }).toContain("Open this page from the app");
    await screenshot(page, "watch-signed-out");
  });

  it("an expired token handed over by the app: told to sign in again", async () => {
    const { page } = await openPage(await newContext(browser), `${edge.url}/watch/some-room${await tokenFragment("late", {}, -60)}`);
    await expect.poll(() => page.locator("#signin").textContent(), { timeout: 10_000 }).toContain("Your sign-in has expired");
  });

  it("studio: creating a stream that the edge refuses shows why", async () => {
    // A token without the broadcaster role: the Streams API refuses to create a stream with it.
    const { page } = await openPage(await newContext(browser, { phone: true }), `${edge.url}/studio${await tokenFragment("caster", { role: "member" })}`);
    await page.getByRole("button", { name: "Create a stream" }).click();
    await expect.poll(() => page.locator("#alerts").textContent(), { timeout: 10_000 }).toContain("Could not create a stream: creating streams needs a token with role 'broadcaster'");
    await screenshot(page, "studio-refused-phone");
  });

  it("upload: a refused upload shows why, the page stays usable", async () => {
    const { page } = await openPage(await newContext(browser), `${edge.url}/upload${await tokenFragment("uploader")}`);
    await page.locator("#file").setInputFiles({ name: "clip.mp4", mimeType: "video/mp4", buffer: Buffer.alloc(64 * 1024, 1) });
    await expect.poll(() => page.locator("#alerts").textContent(), { timeout: 20_000 }).toMatch(/^Upload refused: .*the file is 65536 bytes; the limit is 32768/);
    await page.locator("#file").setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("hi") });
    await expect.poll(() => page.locator("#alerts").textContent()).toContain("notes.txt is not a video file");
    await screenshot(page, "upload-refused");
  });
});
