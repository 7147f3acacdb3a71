// Real-browser tests: Debian's Chromium driven by playwright-core (Playwright's own browser builds are not
// used). Each test gets fresh contexts (separate storage: separate users). Screenshots of every page the tests
// visit are kept under .test-results/screenshots/ (git-ignored) as artifacts.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { ROOT, TEST_SECRETS } from "./edge.ts";
import { mintHs256 } from "./jwt.ts";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const SCREENSHOTS = join(ROOT, ".test-results", "screenshots");

/**
 * Chromium, headless. `media`: a fake camera and microphone (a moving test pattern and a beep), permission prompts
 * answered yes, and WebRTC allowed to use loopback candidates, so pages call each other over 127.0.0.1.
 */
export async function launchChromium(opts: { media?: boolean } = {}): Promise<Browser> {
  // 15 frames/s from the fake camera: plenty to see video move, and lighter on a machine shared by several pages.
  const media = opts.media ? ["--use-fake-device-for-media-stream=fps=15", "--use-fake-ui-for-media-stream", "--allow-loopback-in-peer-connection"] : [];
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless=new", "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--no-sandbox", "--disable-dev-shm-usage", ...media],
  });
}

/** A phone-sized or desktop context; page errors and console errors are collected for assertions and failure output. */
export async function newContext(browser: Browser, opts: { phone?: boolean } = {}): Promise<BrowserContext> {
  return browser.newContext(opts.phone ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true } : { viewport: { width: 1280, height: 800 } });
}

export interface WatchedPage {
  page: Page;
  /** uncaught errors and console errors the page produced */
  errors: string[];
}

export async function openPage(context: BrowserContext, url: string): Promise<WatchedPage> {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
  await page.goto(url);
  return { page, errors };
}

/** A page token for `sub` (the way an app hands one over: in the URL fragment, which no server sees). */
export async function tokenFragment(sub: string, claims: Record<string, unknown> = {}, expiresIn = 3600): Promise<string> {
  const token = await mintHs256(TEST_SECRETS.JWT_SECRET, { sub, expiresIn, claims: { name: sub, ...claims } });
  return `#token=${token}`;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
