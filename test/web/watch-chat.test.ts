import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { RoomClient, type WebSocketCtor } from "../../shared/client/room-client.ts";
import { makeEvent } from "../../shared/envelope.ts";
import { launchChromium, newContext, openPage, screenshot, tokenFragment, type WatchedPage } from "../helpers/browser.ts";
import { type EdgeServer, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import { type CuttableProxy, startProxy } from "../helpers/tcp-proxy.ts";

// The watch page in real Chromium against the real edge: two browser contexts (two users) chat and see each
// other's presence and reactions; a page whose socket is cut shows every message sent meanwhile once it is back,
// including a gap larger than the room replays (fetched over HTTP); errors appear in words.

const RESUME_MAX = 4;

describe("watch page in Chromium: chat, presence, reactions, resume", () => {
  let edge: EdgeServer;
  let proxy: CuttableProxy;
  let browser: Browser;
  const pages: WatchedPage[] = [];
  let n = 0;
  const room = () => `web-${Date.now().toString(36)}-${n++}`;

  beforeAll(async () => {
    edge = await startEdge({ ROOM_RESUME_MAX: String(RESUME_MAX), ROOM_WELCOME_MESSAGES: "3", DEV_SIGN_IN: "true" });
    proxy = await startProxy(edge.port);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await edge?.stop();
  });

  const open = async (base: string, roomId: string, user: string, claims: Record<string, unknown> = {}, phone = false) => {
    const ctx = await newContext(browser, { phone });
    const watched = await openPage(ctx, `${base}/watch/${roomId}${await tokenFragment(user, claims)}`);
    pages.push(watched);
    return watched.page;
  };
  const messages = (page: Page) => page.locator("#messages li .text").allTextContents();

  it("two users chat and see each other's presence and reactions", async () => {
    const roomId = room();
    const alice = await open(edge.url, roomId, "alice");
    const bob = await open(edge.url, roomId, "bob", {}, true);
    for (const page of [alice, bob]) await expect.poll(() => page.locator("#presence-count").textContent(), { timeout: 15_000 }).toBe("2");
    await alice.locator("details.people summary").click();
    await expect.poll(() => alice.locator("#people-list li").allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining("bob")]));

    await alice.getByRole("textbox", { name: "Message" }).fill("hello from alice");
    await alice.getByRole("button", { name: "Send" }).click();
    await expect.poll(() => messages(bob), { timeout: 10_000 }).toEqual(["hello from alice"]);
    await bob.getByRole("textbox", { name: "Message" }).fill("hi alice");
    await bob.getByRole("textbox", { name: "Message" }).press("Enter");
    await expect.poll(() => messages(alice), { timeout: 10_000 }).toEqual(["hello from alice", "hi alice"]);

    const fire = bob.locator('button.reaction[data-emoji="🔥"]');
    await fire.click();
    await fire.click();
    await alice.locator('button.reaction[data-emoji="👏"]').click();
    await expect.poll(() => alice.locator('button.reaction[data-emoji="🔥"] .n').textContent(), { timeout: 10_000 }).toBe("2");
    await expect.poll(() => bob.locator('button.reaction[data-emoji="👏"] .n').textContent(), { timeout: 10_000 }).toBe("1");
    // The inbox bell: a notification for alice shows as her unread count, live; "Mark all read" clears it.
    await expect.poll(() => alice.locator("#bell-button").getAttribute("aria-label")).toBe("Notifications, 0 unread");
    const posted = await fetch(`${edge.url}/internal/users/alice/notifications`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_SECRETS.INTERNAL_API_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(makeEvent("notification.requested", { notificationId: `n-${roomId}`, userId: "alice", title: "Your stream starts soon" }, { source: "web-test", subject: "user/alice" })),
    });
    expect(posted.status).toBe(200);
    await expect.poll(() => alice.locator("#bell-button").getAttribute("aria-label"), { timeout: 10_000 }).toBe("Notifications, 1 unread");
    await alice.locator("#bell-button").click();
    await expect.poll(() => alice.locator("#bell-panel").textContent()).toContain("Your stream starts soon");
    await screenshot(alice, "watch-bell-open");
    await alice.getByRole("button", { name: "Mark all read" }).click();
    await expect.poll(() => alice.locator("#bell-button").getAttribute("aria-label"), { timeout: 10_000 }).toBe("Notifications, 0 unread");
    await alice.keyboard.press("Escape");
    await expect.poll(() => alice.locator("#bell-panel").isVisible()).toBe(false);

    await screenshot(alice, "watch-chat-desktop");
    await screenshot(bob, "watch-chat-phone");
    // 404s are the page asking the streams and videos APIs about an id that is neither (a plain room).
    for (const p of pages) expect(p.errors.filter((e) => !e.includes("status of 404"))).toEqual([]);
  });

  it("a page whose socket is cut shows every message sent meanwhile, a gap included, in order", async () => {
    const roomId = room();
    const carol = await open(proxy.url, roomId, "carol");
    await expect.poll(() => carol.locator("#presence-count").textContent(), { timeout: 15_000 }).toBe("1");
    const dave = new RoomClient({ baseUrl: edge.url, roomId, token: await mintHs256(TEST_SECRETS.JWT_SECRET, { sub: "dave" }), WebSocket: WebSocket as unknown as WebSocketCtor });
    try {
      await dave.connect();
      await dave.send("before the cut");
      await expect.poll(() => messages(carol), { timeout: 10_000 }).toEqual(["before the cut"]);

      proxy.cut({ hold: true });
      await expect.poll(() => carol.locator("#conn-status").textContent(), { timeout: 10_000 }).toContain("Reconnecting");
      await screenshot(carol, "watch-reconnecting");
      const meanwhile = Array.from({ length: RESUME_MAX * 2 }, (_, i) => `while away ${i}`);
      for (const text of meanwhile) await dave.send(text);
      proxy.restore();

      await expect.poll(() => messages(carol), { timeout: 30_000 }).toEqual(["before the cut", ...meanwhile]);
      await expect.poll(() => carol.locator("#conn-status").textContent()).toBe("");
      const ids = await carol.locator("#messages li").evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-id"))));
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      await screenshot(carol, "watch-resumed");
    } finally {
      dave.close();
    }
  });

  it("says in words when the page has no usable token", async () => {
    const ctx = await newContext(browser);
    const expired = await tokenFragment("erin", {}, -120);
    const page = await ctx.newPage();
    // No dev sign-in on this path: the edge has it on, so the page offers the form instead of failing.
    await page.goto(`${edge.url}/watch/${room()}${expired}`);
    await expect.poll(() => page.locator("#signin").textContent(), { timeout: 10_000 }).toContain("Dev sign-in");
    await page.getByLabel("Name").fill("Erin");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.locator("#account").textContent(), { timeout: 10_000 }).toContain("Signed in as Erin");
    await expect.poll(() => page.locator("#presence-count").textContent(), { timeout: 15_000 }).toBe("1");
    await screenshot(page, "watch-dev-signin");
  });
});
