// Low latency end to end: a stream created through the Streams API with `latency: "low"`, a broadcaster publishing
// with its stream key to a real media node (which learns the latency from the edge's key check), parts announced
// to the edge (wrangler dev) as they are stored, and the watch page in Chromium playing the LL-HLS master with
// hls.js in low-latency mode through the edge's /play. Beside the browser, a Node client follows the live edge with
// blocking requests the way hls.js does and reads every playlist with an independent parser (m3u8-parser).
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newContext, openPage, screenshot, tokenFragment } from "../helpers/browser.ts";
import { type EdgeServer, TEST_SECRETS } from "../helpers/edge.ts";
import { publishTestSource } from "../helpers/ffmpeg.ts";
import { parsePlaylist } from "../helpers/hls.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import type { GroupProcess } from "../helpers/process.ts";
import { waitFor } from "../helpers/wait.ts";
import type { MediaFixture } from "../media/fixture.ts";
import { type LiveWebStack, startLiveWebStack } from "./live-stack.ts";

interface Diagnostics {
  lowLatency: boolean;
  stalls: number;
  behindS: number | null;
  edgeLatencyS: number | null;
  targetLatencyS: number | null;
  url: string | null;
}

describe("low-latency HLS through the edge (Chromium, hls.js)", () => {
  let stack: LiveWebStack | undefined;
  let media: MediaFixture;
  let edge: EdgeServer;
  let browser: Browser;
  let publisher: GroupProcess | null = null;

  beforeAll(async () => {
    stack = await startLiveWebStack({
      node: (edgeUrl) => ({
        streamKeys: { edgeUrl, internalToken: TEST_SECRETS.INTERNAL_API_TOKEN, intervalMs: 2000, timeoutMs: 1500 },
        llhls: { llhlsEdgeUrl: edgeUrl, announceSecrets: [TEST_SECRETS.EDGE_INGRESS_SECRET], partMs: 333, announceTimeoutMs: 2000 },
      }),
      edgeVars: (media, edgeUrl) => ({ PLAYBACK_ORIGIN_URL: `${media.node.httpUrl}/media`, PLAYBACK_BASE_URL: edgeUrl }),
    });
    ({ media, edge, browser } = stack);
  });
  afterAll(async () => {
    await publisher?.stop();
    await stack?.stop();
  });

  it("plays a `latency: low` stream in low-latency mode, close behind the broadcaster, from conforming playlists", async () => {
    const owner = await mintHs256(TEST_SECRETS.JWT_SECRET, { sub: "ll-owner", claims: { role: "broadcaster" } });
    const created = await fetch(`${edge.url}/streams`, { method: "POST", headers: { authorization: `Bearer ${owner}`, "content-type": "application/json" }, body: JSON.stringify({ latency: "low", title: "LL" }) });
    expect(created.status).toBe(201);
    const s = (await created.json()) as { id: string; latencyMode: string; rtmp: { streamKey: string }; playback: { lowLatencyUrl?: string } };
    expect(s.latencyMode).toBe("low");

    const ctx = await newContext(browser);
    const { page, errors } = await openPage(ctx, `${edge.url}/watch/${s.id}${await tokenFragment("ll-viewer", { role: "viewer" })}`);
    const session = media.nextSession(s.id);
    publisher = publishTestSource(`${media.rtmpBase}/live/${s.rtmp.streamKey}`, { size: "640x360" });
    const rec = await session;
    expect(rec.session.claims.lat).toBe("low");
    await expect.poll(() => page.locator("#stream-status").getAttribute("data-status"), { timeout: 90_000 }).toBe("live");

    type Handle = { pulsecast: { player: { diagnostics(): Diagnostics } } };
    const diagnostics = () => page.evaluate(() => (window as unknown as Handle).pulsecast.player.diagnostics());
    await expect.poll(async () => (await diagnostics()).behindS, { timeout: 60_000 }).not.toBeNull();
    const d = await diagnostics();
    expect(d.lowLatency).toBe(true);
    expect(d.url).toBe(`${edge.url}/play/${s.id}/live-ll.m3u8`);
    // hls.js aims at the playlist's PART-HOLD-BACK (3 parts), not at a few segments
    expect(d.targetLatencyS).toBeCloseTo(1.011, 2);
    // Behind the broadcaster (ingest time in the playlists against this page's clock), and behind the playlist's
    // live edge as hls.js sees it against its target, sampled for 8 s once playing.
    const behind: number[] = [];
    const overTarget: number[] = [];
    const until = Date.now() + 8000;
    while (Date.now() < until) {
      const x = await diagnostics();
      if (x.behindS !== null) behind.push(x.behindS);
      if (x.edgeLatencyS !== null && x.targetLatencyS !== null) overTarget.push(x.edgeLatencyS - x.targetLatencyS);
      await page.waitForTimeout(250);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    console.log(`watch page behind the broadcaster: median ${median(behind).toFixed(2)} s, beyond hls.js's target ${median(overTarget).toFixed(2)} s, over ${behind.length} samples (load ${(await import("node:os")).loadavg()[0]!.toFixed(1)})`);
    // The player keeps near its low-latency target (hls.js closes small gaps by playing up to 10% faster)...
    expect(median(overTarget)).toBeLessThan(2);
    // ...and plays closer to the broadcaster than classic HLS's own hold-back (3 target durations, 6 s) alone. How
    // close, on a quiet machine, is what `npm run bench:llhls` measures; this test runs beside other work.
    expect(median(behind)).toBeLessThan(6);
    await screenshot(page, "watch-llhls");

    // The same playlists as a client following the live edge sees them, read with m3u8-parser.
    const master = parsePlaylist(await (await fetch(`${edge.url}/play/${s.id}/live-ll.m3u8`)).text());
    const uris = master.playlists.map((p: { uri: string }) => p.uri as string);
    expect(uris).toEqual([`${rec.session.broadcastId}/360p/ll.m3u8`, `${rec.session.broadcastId}/240p/ll.m3u8`]);
    const url = `${edge.url}/play/${s.id}/${uris[1]}`;
    let m = parsePlaylist(await (await fetch(url)).text());
    for (let i = 0; i < 8; i++) {
      const pre = m.preloadSegment?.parts ?? [];
      const msn = m.mediaSequence + m.segments.length;
      const next = pre.length > 0 ? `_HLS_msn=${msn}&_HLS_part=${pre.length}` : `_HLS_msn=${msn}&_HLS_part=0`;
      const res = await fetch(`${url}?${next}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-encoding")).toBe("gzip");
      m = parsePlaylist(await res.text());
      expect(m.serverControl.canBlockReload).toBe(true);
      expect(m.serverControl.partHoldBack).toBeGreaterThanOrEqual(3 * m.partInf.partTarget - 1e-9);
      const parts = [...m.segments.flatMap((x: { parts?: { duration: number }[] }) => x.parts ?? []), ...(m.preloadSegment?.parts ?? [])];
      for (const p of parts) expect(p.duration).toBeLessThanOrEqual(m.partInf.partTarget);
      expect(m.renditionReports).toHaveLength(1);
      expect(m.preloadSegment.preloadHints[0].type).toBe("PART");
      expect(m.segments.every((x: { programDateTime?: number }) => typeof x.programDateTime === "number")).toBe(true);
    }
    // and the part they list is served through the Worker
    const lastPart = (m.preloadSegment?.parts ?? []).at(-1) ?? m.segments.at(-1).parts.at(-1);
    expect((await fetch(`${edge.url}/play/${s.id}/${rec.session.broadcastId}/240p/${lastPart.uri}`)).status).toBe(200);

    await publisher.stop();
    publisher = null;
    await rec.whenEnded(60_000);
    const ended = await waitFor("ENDLIST in the LL playlist", async () => {
      const x = parsePlaylist(await (await fetch(url)).text());
      return x.endList ? x : undefined;
    });
    expect(ended.preloadSegment).toBeUndefined();
    expect(errors.filter((e) => !e.includes("status of 404"))).toEqual([]);
  });
});
