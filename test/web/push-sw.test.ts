// The push service worker in a real Chromium, served by the edge (wrangler dev) at /push/sw.js. Pushes are handed to
// the worker the way the browser's push channel would (DevTools' ServiceWorker.deliverPushMessage), with payloads
// the edge really sends: the test pushes through the edge to the local push service and delivers what it decrypted.
// A copy of a notification (the edge's resend after a request that got no answer) is never shown twice: while the
// first is on screen it is replaced in place, and after the user dismissed it nothing comes back.
import type { Browser, BrowserContext, CDPSession, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, newContext } from "../helpers/browser.ts";
import { type NotifyHarness, startNotifyHarness } from "../notify/harness.ts";
import { waitFor } from "../helpers/wait.ts";

let h: NotifyHarness;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let cdp: CDPSession;
let registrationId: string;

beforeAll(async () => {
  [h, browser] = await Promise.all([startNotifyHarness(), launchChromium()]);
  context = await newContext(browser);
  await context.grantPermissions(["notifications"], { origin: h.edge.url });
  page = await context.newPage();
  await page.goto(`${h.edge.url}/healthz`);
  cdp = await context.newCDPSession(page);
  const registrations: { registrationId: string; scopeURL: string; isDeleted: boolean }[] = [];
  cdp.on("ServiceWorker.workerRegistrationUpdated", (e: { registrations: typeof registrations }) => registrations.push(...e.registrations));
  await cdp.send("ServiceWorker.enable");
  await page.evaluate(async () => {
    const reg = await navigator.serviceWorker.register("/push/sw.js");
    const worker = (reg.installing ?? reg.waiting ?? reg.active)!;
    if (worker.state !== "activated") await new Promise<void>((resolve) => worker.addEventListener("statechange", () => worker.state === "activated" && resolve()));
  });
  registrationId = (await waitFor("the worker's registration", () => registrations.find((r) => r.scopeURL === `${h.edge.url}/push/` && !r.isDeleted), 10_000)).registrationId;
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await h?.stop();
});

/** Hands `payload` to the service worker as a push. */
const deliver = (payload: string) => cdp.send("ServiceWorker.deliverPushMessage", { origin: h.edge.url, registrationId, data: payload });

/** The notifications on screen: tag and title. */
const shown = () =>
  page.evaluate(async () => (await (await navigator.serviceWorker.getRegistration("/push/"))!.getNotifications()).map((n) => ({ tag: n.tag, title: n.title, body: n.body })));

/** How many copies after the first the worker has seen for `id` (null: not seen); it records this before it decides. */
const copies = (id: string) =>
  page.evaluate(async (id) => {
    const record = await (await caches.open("pulsecast-push-seen")).match(`/push/seen/${encodeURIComponent(id)}`);
    return record ? ((await record.json()) as { copies: number }).copies : null;
  }, id);

/** A payload as the edge sent it: pushed through the edge and decrypted by the local push service. */
async function pushedPayload(user: string, notificationId: string, title: string): Promise<string> {
  const { hash } = await h.subscribe(user);
  expect((await h.notify(user, { notificationId, title, body: "from the edge" })).status).toBe(200);
  return (await waitFor(`the push of ${notificationId}`, () => h.push.received.find((p) => p.hash === hash), 30_000)).payload;
}

describe("push service worker", () => {
  it("shows a push once, replaces it in place when a copy comes while it is on screen", async () => {
    const payload = await pushedPayload("sw-user-1", "n-sw-1", "Your video is ready");
    await deliver(payload);
    await expect.poll(shown, { timeout: 10_000 }).toEqual([{ tag: "n-sw-1", title: "Your video is ready", body: "from the edge" }]);
    await deliver(payload); // the resend after a request that got no answer
    await expect.poll(() => copies("n-sw-1"), { timeout: 10_000 }).toBe(1);
    await expect.poll(shown, { timeout: 10_000 }).toEqual([{ tag: "n-sw-1", title: "Your video is ready", body: "from the edge" }]);
  });

  it("shows nothing again for a copy of a notification the user dismissed, and still shows new ones", async () => {
    await page.evaluate(async () => (await (await navigator.serviceWorker.getRegistration("/push/"))!.getNotifications()).forEach((n) => n.close()));
    await expect.poll(shown, { timeout: 10_000 }).toEqual([]);
    const again = h.push.received.find((p) => JSON.parse(p.payload).id === "n-sw-1")!.payload;
    await deliver(again);
    await expect.poll(() => copies("n-sw-1"), { timeout: 10_000 }).toBe(2);
    const next = await pushedPayload("sw-user-2", "n-sw-2", "Ana is live");
    await deliver(next);
    await expect.poll(shown, { timeout: 10_000 }).toEqual([{ tag: "n-sw-2", title: "Ana is live", body: "from the edge" }]);
    expect(await copies("n-sw-2")).toBe(0);
  });
});
