import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, newContext, openPage, screenshot, tokenFragment, type WatchedPage } from "../helpers/browser.ts";
import { decodingPeers, peerMedia } from "../helpers/call-page.ts";
import { type EdgeServer, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import { type CuttableProxy, startProxy } from "../helpers/tcp-proxy.ts";

// The call page (/call/<room>) in real Chromium with fake cameras and microphones, peers talking over loopback:
// a 3-party mesh where everyone decodes everyone; mute, camera off and a shared screen reach the others; one user
// in two tabs is two peers; a page whose socket is cut rejoins and its media comes back both ways; a viewer watches
// but cannot join or signal; the mesh limit is said in words.

// Several browser contexts each encoding and decoding video: on a busy 2-core machine a test takes a while.
const CALL_TEST_MS = 120_000;

describe("call page in Chromium", { timeout: CALL_TEST_MS }, () => {
  let edge: EdgeServer;
  let proxy: CuttableProxy;
  let browser: Browser;
  const pages: WatchedPage[] = [];
  let n = 0;
  const room = () => `call-${Date.now().toString(36)}-${n++}`;

  beforeAll(async () => {
    // No STUN: loopback host candidates are all these peers need, and nothing leaves 127.0.0.1.
    edge = await startEdge({ CALL_STUN_URLS: "none", CALL_MAX_PEERS: "3" });
    proxy = await startProxy(edge.port);
    browser = await launchChromium({ media: true });
  });
  // Each test's pages leave when it ends: a call left running would keep encoding and decoding under the next test.
  afterEach(async () => {
    for (const p of pages.splice(0)) await p.page.context().close();
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await edge?.stop();
  });

  const open = async (roomId: string, user: string, opts: { claims?: Record<string, unknown>; base?: string; phone?: boolean } = {}): Promise<Page> => {
    const ctx = await newContext(browser, { phone: opts.phone ?? false });
    const watched = await openPage(ctx, `${opts.base ?? edge.url}/call/${roomId}${await tokenFragment(user, opts.claims)}`);
    pages.push(watched);
    return watched.page;
  };
  const join = async (page: Page) => {
    const button = page.getByRole("button", { name: "Join call" });
    await button.waitFor({ timeout: 30_000 });
    await expect.poll(() => page.locator("#preview").evaluate((v: HTMLVideoElement) => v.videoWidth), { timeout: 10_000 }).toBeGreaterThan(0);
    await button.click();
    await page.locator("#stage").waitFor({ timeout: 15_000 });
  };
  const connectionIdOf = (page: Page) => page.evaluate(() => (globalThis as unknown as { pulsecast: { call: { connectionId: string } } }).pulsecast.call.connectionId);

  it("three people: every page decodes both others' video; mute, camera off and screen share reach the others", async () => {
    const roomId = room();
    const [ada, bo, cy] = [await open(roomId, "ada"), await open(roomId, "bo"), await open(roomId, "cy", { phone: true })];
    for (const p of [ada, bo, cy]) await join(p);
    await expect.poll(() => decodingPeers(ada), { timeout: 30_000 }).toEqual(["bo", "cy"]);
    await expect.poll(() => decodingPeers(bo), { timeout: 30_000 }).toEqual(["ada", "cy"]);
    await expect.poll(() => decodingPeers(cy), { timeout: 30_000 }).toEqual(["ada", "bo"]);
    // The video keeps playing (not one frame): each remote tile's clock moves on.
    const before = await peerMedia(ada);
    await expect.poll(async () => (await peerMedia(ada)).every((p, i) => p.currentTime > before[i]!.currentTime && p.framesDecoded > before[i]!.framesDecoded), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => ada.locator("#call-status").textContent()).toContain("with 2 others");

    await bo.getByRole("button", { name: "Mute" }).click();
    await expect.poll(() => bo.getByRole("button", { name: "Unmute" }).getAttribute("aria-pressed")).toBe("true");
    await bo.getByRole("button", { name: "Turn camera off" }).click();
    for (const p of [ada, cy]) {
      const tile = p.locator('li.tile[data-user="bo"]');
      await expect.poll(() => tile.locator(".flag").allTextContents(), { timeout: 10_000 }).toContain("Muted");
      await expect.poll(() => tile.locator(".off").count()).toBe(1);
    }
    // A shared screen reaches the others in a tile of its own (the third slot: no renegotiation), and goes away.
    await ada.getByRole("button", { name: "Share screen" }).click();
    for (const p of [bo, cy]) {
      await expect.poll(() => p.locator('li.tile.screen video').evaluate((v: HTMLVideoElement) => v.videoWidth).catch(() => 0), { timeout: 15_000 }).toBeGreaterThan(0);
      expect(await p.locator('li.tile[data-user="ada"] .flag').allTextContents()).toContain("Sharing screen");
    }
    await screenshot(bo, "call-screen-share");
    await ada.getByRole("button", { name: "Stop sharing" }).click();
    for (const p of [bo, cy]) await expect.poll(() => p.locator("li.tile.screen").count(), { timeout: 10_000 }).toBe(0);
    await screenshot(ada, "call-three-desktop");
    await screenshot(cy, "call-three-phone");

    // A fourth person past this edge's limit of 3: told in words, the call goes on.
    const dee = await open(roomId, "dee");
    await dee.getByRole("button", { name: "Join call" }).click();
    await expect.poll(() => dee.locator("#call-status").textContent(), { timeout: 10_000 }).toContain("This call is full: 3 people are in it, the most a mesh call takes");
    expect(await dee.locator("#alerts").textContent()).toContain("try again when someone leaves");
    await screenshot(dee, "call-full");

    await cy.getByRole("button", { name: "Leave" }).click();
    await expect.poll(() => cy.locator("#left").isVisible()).toBe(true);
    await expect.poll(async () => (await peerMedia(ada)).map((p) => p.userId), { timeout: 10_000 }).toEqual(["bo"]);
    expect(await ada.locator('li.tile[data-user="cy"]').count()).toBe(0);
    // Camera back on (a new camera track, sent in place of none): the others see bo again.
    await bo.getByRole("button", { name: "Turn camera on" }).click();
    const boFrames = (await peerMedia(ada)).find((p) => p.userId === "bo")!.framesDecoded;
    await expect.poll(async () => (await peerMedia(ada)).find((p) => p.userId === "bo")!.framesDecoded, { timeout: 15_000 }).toBeGreaterThan(boFrames);
    await expect.poll(() => ada.locator('li.tile[data-user="bo"] .off').count()).toBe(0);
    // Now there is room for the fourth.
    await dee.getByRole("button", { name: "Join call" }).click();
    await expect.poll(() => decodingPeers(dee), { timeout: 30_000 }).toEqual(["ada", "bo"]);
    for (const p of pages) expect(p.errors).toEqual([]);
  });

  it("one user in two tabs is two peers", async () => {
    const roomId = room();
    const tab1 = await open(roomId, "dana");
    const tab2 = await open(roomId, "dana");
    const eve = await open(roomId, "eve");
    for (const p of [tab1, tab2, eve]) await join(p);
    await expect.poll(() => decodingPeers(eve), { timeout: 30_000 }).toEqual(["dana", "dana"]);
    await expect.poll(() => decodingPeers(tab1), { timeout: 30_000 }).toEqual(["dana", "eve"]);
    await expect.poll(() => decodingPeers(tab2), { timeout: 30_000 }).toEqual(["dana", "eve"]);
    const ids = (await peerMedia(eve)).map((p) => p.connectionId);
    expect(new Set(ids).size).toBe(2);
    expect(ids.sort()).toEqual([await connectionIdOf(tab1), await connectionIdOf(tab2)].sort());
    await tab1.close();
    await expect.poll(() => decodingPeers(eve), { timeout: 10_000 }).toEqual(["dana"]);
  });

  it("a page whose socket is cut mid-call rejoins, and media flows again both ways", async () => {
    const roomId = room();
    const far = await open(roomId, "far", { base: proxy.url });
    const near = await open(roomId, "near");
    for (const p of [far, near]) await join(p);
    await expect.poll(() => decodingPeers(far), { timeout: 30_000 }).toEqual(["near"]);
    await expect.poll(() => decodingPeers(near), { timeout: 30_000 }).toEqual(["far"]);
    const oldId = await connectionIdOf(far);

    proxy.cut({ hold: true });
    await expect.poll(() => far.locator("#call-status").textContent(), { timeout: 10_000 }).toMatch(/Connection lost/);
    // The edge saw the socket close: the other side drops that peer.
    await expect.poll(async () => (await peerMedia(near)).length, { timeout: 10_000 }).toBe(0);
    await screenshot(far, "call-reconnecting");
    proxy.restore();

    await expect.poll(() => far.locator("#call-status").textContent(), { timeout: 20_000 }).toContain("with 1 other");
    const newId = await connectionIdOf(far);
    expect(newId).not.toBe(oldId);
    await expect.poll(() => decodingPeers(far), { timeout: 30_000 }).toEqual(["near"]);
    await expect.poll(() => decodingPeers(near), { timeout: 30_000 }).toEqual(["far"]);
    expect((await peerMedia(near))[0]!.connectionId).toBe(newId);
    expect(await far.evaluate(() => (globalThis as unknown as { pulsecast: { call: { stats(): { rejoins: number } } } }).pulsecast.call.stats().rejoins)).toBe(1);
  });

  it("a viewer opens the room but cannot join the call, signal, or get ICE servers", async () => {
    const roomId = room();
    const host = await open(roomId, "host");
    await join(host);
    const hostId = await connectionIdOf(host);
    const viewer = await open(roomId, "vic", { claims: { role: "viewer" } });
    await expect.poll(() => viewer.locator("#call-status").textContent(), { timeout: 15_000 }).toContain("signed in as a viewer");
    expect(await viewer.locator("#lobby").isVisible()).toBe(false);
    const refusals = await viewer.evaluate(async (to) => {
      type Room = { signal(to: string, m: unknown): string; joinCall(media: unknown): string; on(e: string, l: (v: { id: string; code: string }) => void): () => void };
      const room = (globalThis as unknown as { pulsecast: { room: Room } }).pulsecast.room;
      const seen: Record<string, string> = {};
      const done = new Promise<void>((resolve) => room.on("signalError", (e) => ((seen[e.id] = e.code), Object.keys(seen).length === 2 && resolve())));
      const ids = [room.signal(to, { kind: "offer", sdp: "v=0" }), room.joinCall({ audio: true, video: true, screen: false })];
      await done;
      return ids.map((id) => seen[id]);
    }, hostId);
    expect(refusals).toEqual(["forbidden", "forbidden"]);
    const ice = await fetch(`${edge.url}/calls/ice-servers`, { headers: { authorization: `Bearer ${await mintHs256(TEST_SECRETS.JWT_SECRET, { sub: "vic", claims: { role: "viewer" } })}` } });
    expect(ice.status).toBe(403);
    expect(await peerMedia(host)).toEqual([]);
    await screenshot(viewer, "call-viewer");
  });
});
