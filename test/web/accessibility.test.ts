import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, newContext, openPage, screenshot, tokenFragment } from "../helpers/browser.ts";
import { type EdgeServer, startEdge } from "../helpers/edge.ts";

// Every page on a phone-sized screen: each control has an accessible name, nothing overflows sideways, the first
// Tab reaches "Skip to content", and the chat can be used from the keyboard alone.

/** Controls (shown ones) that a screen reader would announce without a name. */
function unnamedControls(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>("button, input, select, textarea, a[href], [tabindex]")]
      .filter((el) => el.getClientRects().length > 0 && !(el as HTMLInputElement).hidden)
      .filter((el) => {
        const labels = (el as HTMLInputElement).labels;
        const named = el.getAttribute("aria-label") || el.getAttribute("aria-labelledby") || (labels && labels.length > 0) || el.textContent?.trim() || el.title;
        return !named;
      })
      .map((el) => el.outerHTML.slice(0, 120)),
  );
}

describe("pages are usable with a keyboard and on a phone (Chromium)", () => {
  let edge: EdgeServer;
  let browser: Browser;

  beforeAll(async () => {
    edge = await startEdge();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await edge?.stop();
  });

  for (const path of ["/watch/a11y-room", "/studio", "/upload", "/call/a11y-call"]) {
    it(`${path}: named controls, no sideways scrolling, skip link first`, async () => {
      const { page } = await openPage(await newContext(browser, { phone: true }), `${edge.url}${path}${await tokenFragment("a11y", { role: "broadcaster" })}`);
      await expect.poll(() => page.locator("#account").textContent(), { timeout: 10_000 }).toContain("Signed in as a11y");
      await expect.poll(() => page.locator("#bell-button").count(), { timeout: 10_000 }).toBe(1);
      expect(await unnamedControls(page)).toEqual([]);
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      await page.keyboard.press("Tab");
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");
      await screenshot(page, `a11y-phone${path.replace(/\//g, "-")}`);
    });
  }

  it("chat from the keyboard alone", async () => {
    const { page } = await openPage(await newContext(browser), `${edge.url}/watch/a11y-keys${await tokenFragment("keys")}`);
    await expect.poll(() => page.locator("#presence-count").textContent(), { timeout: 15_000 }).toBe("1");
    await page.locator("#chat-input").focus();
    await page.keyboard.type("typed, not clicked");
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator("#messages li .text").allTextContents(), { timeout: 10_000 }).toEqual(["typed, not clicked"]);
    // The reaction buttons are reachable and pressable with the keyboard.
    await page.locator('button.reaction[data-emoji="👍"]').focus();
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator('button.reaction[data-emoji="👍"] .n').textContent(), { timeout: 10_000 }).toBe("1");
  });
});
