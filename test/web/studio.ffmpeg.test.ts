import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newContext, openPage, screenshot, tokenFragment } from "../helpers/browser.ts";
import { type EdgeServer, TEST_SECRETS } from "../helpers/edge.ts";
import { publishTestSource } from "../helpers/ffmpeg.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import type { GroupProcess } from "../helpers/process.ts";
import { waitFor } from "../helpers/wait.ts";
import type { MediaFixture } from "../media/fixture.ts";
import { type LiveWebStack, startLiveWebStack } from "./live-stack.ts";

// The studio page in Chromium against the Streams API: it creates a stream (POST /streams) and shows the OBS
// server and key; FFmpeg publishes with them as OBS would (the media node checks the key with the edge), and the
// page goes from "waiting for signal" to live with renditions and a viewer. The viewer's watch page plays
// through the edge's /play by id; once the stream is signed, a new viewer plays with the token the room mints for
// them. The broadcaster moderates the chat, then rotates the key: the media node cuts the publisher.
const SIGNING_KEYS = "web:test-playback-key-web-0123456789abcdef";

type PageHandle = { pulsecast: { player: { currentUrl: string | null } } };

describe("studio page goes live through the Streams API (Chromium)", () => {
  let stack: LiveWebStack | undefined;
  let media: MediaFixture;
  let edge: EdgeServer;
  let browser: Browser;
  let publisher: GroupProcess | null = null;

  beforeAll(async () => {
    // The node asks the edge about stream keys and the edge names the node's RTMP URL.
    stack = await startLiveWebStack({
      node: (edgeUrl) => ({ streamKeys: { edgeUrl, internalToken: TEST_SECRETS.INTERNAL_API_TOKEN, intervalMs: 500, timeoutMs: 1500 } }),
      edgeVars: (media, edgeUrl) => ({
        RTMP_BASE_URL: `${media.rtmpBase}/live`,
        PLAYBACK_BASE_URL: edgeUrl,
        PLAYBACK_ORIGIN_URL: `${media.node.httpUrl}/media`,
        PLAYBACK_SIGNING_KEYS: SIGNING_KEYS,
      }),
    });
    ({ media, edge, browser } = stack);
  });
  afterAll(async () => {
    await publisher?.kill();
    await stack?.stop();
  });

  it("creates a stream, shows the OBS settings, goes live, plays through /play, moderates, rotates the key", async () => {
    const casterJwt = await mintHs256(TEST_SECRETS.JWT_SECRET, { sub: "caster", claims: { role: "broadcaster", name: "caster" } });
    const { page, errors } = await openPage(await newContext(browser), `${edge.url}/studio#token=${casterJwt}`);
    await page.getByLabel("Title").fill("Browser test stream");
    await page.getByRole("button", { name: "Create a stream" }).click();
    await expect.poll(() => page.locator("#stream-panel").isVisible(), { timeout: 15_000 }).toBe(true);
    expect(await page.locator("#studio-status").getAttribute("data-status")).toBe("waiting");
    expect(await page.locator("#playback-policy").textContent()).toBe("Public");
    const server = (await page.locator("#rtmp-url").textContent())!;
    const key = (await page.locator("#stream-key").textContent())!;
    expect(server).toBe(`${media.rtmpBase}/live`);
    const streamId = key.split("?")[0]!;
    expect(streamId).toMatch(/^str_/);
    expect(key).toMatch(/^str_[^?]+\?token=.+/);
    // The page shows what the API answered for this stream.
    const api = (method: string, path: string, body?: unknown) =>
      fetch(`${edge.url}${path}`, { method, headers: { authorization: `Bearer ${casterJwt}`, "content-type": "application/json" }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const resource = (await (await api("GET", `/streams/${streamId}`)).json()) as { obs: { server: string; key: string }; status: string };
    expect(resource).toMatchObject({ obs: { server, key }, status: "idle" });

    publisher = publishTestSource(`${server}/${key}`, { size: "640x360" });
    await expect.poll(() => page.locator("#studio-status").getAttribute("data-status"), { timeout: 90_000 }).toBe("live");
    await expect.poll(() => page.locator("#renditions").textContent(), { timeout: 30_000 }).toMatch(/^360p, 240p\b/);

    // A viewer on the watch page the studio links to: it plays the public /play URL the room's welcome gave it.
    const watchUrl = await page.locator("#watch-link").getAttribute("href");
    expect(watchUrl).toBe(`/watch/${streamId}`);
    const { page: viewer, errors: viewerErrors } = await openPage(await newContext(browser, { phone: true }), `${edge.url}${watchUrl}${await tokenFragment("fan")}`);
    await expect.poll(() => viewer.locator("#stream-status").getAttribute("data-status"), { timeout: 30_000 }).toBe("live");
    await expect.poll(() => viewer.evaluate(() => (window as unknown as PageHandle).pulsecast.player.currentUrl)).toBe(`${edge.url}/play/${streamId}/live.m3u8`);
    const viewerTime = () => viewer.locator("#video").evaluate((v: HTMLVideoElement) => v.currentTime);
    await expect.poll(viewerTime, { timeout: 60_000 }).toBeGreaterThan(0);
    await expect.poll(() => page.locator("#viewers").textContent(), { timeout: 15_000 }).toBe("1");

    // Moderation from the studio.
    await viewer.getByRole("textbox", { name: "Message" }).fill("spam spam");
    await viewer.getByRole("button", { name: "Send" }).click();
    await page.getByRole("button", { name: "Delete message from fan" }).click();
    await expect.poll(() => viewer.locator("#messages li .text").allTextContents(), { timeout: 10_000 }).toEqual(["(message deleted)"]);
    await page.locator("details.people summary").click();
    await page.getByRole("button", { name: "Ban fan" }).click();
    await expect.poll(() => viewer.locator("#alerts").textContent(), { timeout: 10_000 }).toContain("banned");
    await screenshot(page, "studio-live");

    // Signed: the id no longer plays; a viewer who joins now plays with a token minted for them.
    expect((await api("PATCH", `/streams/${streamId}`, { playbackPolicy: "signed" })).status).toBe(200);
    await waitFor("the id to be refused on /play", async () => {
      const res = await fetch(`${edge.url}/play/${streamId}/live.m3u8`);
      await res.arrayBuffer();
      return res.status === 403;
    }, 15_000);
    const { page: signed, errors: signedErrors } = await openPage(await newContext(browser), `${edge.url}${watchUrl}${await tokenFragment("fan-2")}`);
    await expect.poll(() => signed.locator("#stream-status").getAttribute("data-status"), { timeout: 30_000 }).toBe("live");
    const signedUrl = await signed.evaluate(() => (window as unknown as PageHandle).pulsecast.player.currentUrl);
    expect(signedUrl).toMatch(new RegExp(`^${edge.url}/play/[^/]+/live\\.m3u8$`));
    expect(signedUrl).not.toContain(streamId);
    const signedTime = () => signed.locator("#video").evaluate((v: HTMLVideoElement) => v.currentTime);
    await expect.poll(signedTime, { timeout: 60_000 }).toBeGreaterThan(0);
    await screenshot(signed, "watch-signed");

    // Rotation: a new key on the page, and the media node cuts the publisher still using the old one.
    await page.getByRole("button", { name: "Rotate key" }).click();
    await expect.poll(() => page.locator("#stream-key").textContent(), { timeout: 10_000 }).not.toBe(key);
    expect((await page.locator("#stream-key").textContent())!.startsWith(`${streamId}?token=`)).toBe(true);
    const code = await Promise.race([publisher.exited, new Promise<"still running">((r) => setTimeout(() => r("still running"), 20_000))]);
    expect(code).not.toBe("still running");
    publisher = null;
    expect(media.logs.some((l) => l.msg === "stream key revoked while live: cutting the publisher" && l.streamId === streamId)).toBe(true);
    await expect.poll(() => page.locator("#studio-status").getAttribute("data-status"), { timeout: 30_000 }).toBe("ended");
    await screenshot(page, "studio-key-rotated");

    // Expected refusals only: 404s of lookups (a stream id is not a video), and 403s once the stream turned signed
    // (pages that joined while it was public hold its id; the banned viewer's room refuses it). Nothing else.
    const unexpected = (list: string[]) => list.filter((e) => !/status of (403|404)/.test(e));
    expect(unexpected(errors)).toEqual([]);
    expect(unexpected(viewerErrors)).toEqual([]);
    expect(signedErrors.filter((e) => !e.includes("status of 404"))).toEqual([]);
  });
});
