// `npm run bench:web`: one JSON line about the pages, measured in Debian's Chromium (playwright-core) against
// the whole local stack (media node with real FFmpeg RTMP ingest, nats-server, NATS->HTTP bridge, wrangler dev),
// all on 127.0.0.1. A script, not a test (no pass/fail); targets are in README "Benchmarks".
//   watch_ttff_s     navigation start of /watch/<live stream> -> first frame playing (median of `runs` fresh loads)
//   live_latency_s   media seconds the publisher has sent (FFmpeg -progress) minus the media time on screen,
//                    median over the last samples of a page left playing (the stream's timeline starts at the
//                    publish, so this is publish-to-screen delay within the progress report's 0.5 s step)
//   page_js_kb       gzipped size of every script the watch page loaded while playing, hls.js included
//   chat_rtt_p50_ms  the page's RoomClient.send() until the room's echo of it arrives, median of `samples`
//
//   node test/bench/web.ts [runs=3] [samples=40]
//
// Details go to stderr; the JSON line to stdout.
import { gzipSync } from "node:zlib";
import type { Page } from "playwright-core";
import { buildWeb } from "../../web/build.ts";
import { startNatsToHttpBridge } from "../helpers/bridges.ts";
import { launchChromium, newContext, tokenFragment } from "../helpers/browser.ts";
import { startEdge } from "../helpers/edge.ts";
import { publishTestSource, sentSeconds } from "../helpers/ffmpeg.ts";
import { waitFor } from "../helpers/wait.ts";
import { startMediaFixture } from "../media/fixture.ts";
import { median, percentile, round } from "./lib/stats.ts";

const RUNS = Number(process.argv[2] ?? 3);
const SAMPLES = Number(process.argv[3] ?? 40);
const log = (...args: unknown[]) => console.error("[bench:web]", ...args);

type Handle = { pulsecast: { room: { send(text: string): Promise<unknown>; state: string } } };

await buildWeb();
const media = await startMediaFixture({ MEDIA_LOG_LEVEL: "warn" });
const edge = await startEdge();
const bridge = await startNatsToHttpBridge({ nats: media.nats, edgeUrl: `${edge.url}/hooks/events` });
const browser = await launchChromium();
const streamId = `bench-web-${Date.now().toString(36)}`;
const publisher = publishTestSource(`${media.rtmpBase}/live/${streamId}?token=${await media.token(streamId)}`, { size: "640x360", progress: true });

try {
  await media.waitForEvent("stream.live", (e) => e.data.streamId === streamId, 90_000);
  // The room hears of it through the bridge; wait until a welcome would carry the playback URL.
  await waitFor("the room knows the stream is live", async () => {
    const ctx = await newContext(browser);
    const page = await ctx.newPage();
    await page.goto(`${edge.url}/watch/${streamId}${await tokenFragment("probe")}`);
    const status = await page.locator("#stream-status").getAttribute("data-status", { timeout: 5_000 }).catch(() => null);
    const ok = await page.waitForFunction(() => document.getElementById("stream-status")?.dataset.status === "live", null, { timeout: 5_000 }).then(() => true, () => false);
    await ctx.close();
    log("probe status", status, ok);
    return ok;
  }, 60_000, 500);

  // Time to first frame, fresh context (cold cache) each run; scripts of the first run are weighed.
  const ttffs: number[] = [];
  let scriptBytes = 0;
  let page: Page | null = null;
  for (let run = 0; run < RUNS; run++) {
    const ctx = await newContext(browser);
    const p = await ctx.newPage();
    const scripts: Promise<number>[] = [];
    if (run === 0) p.on("response", (res) => res.request().resourceType() === "script" && scripts.push(res.body().then((b) => gzipSync(b, { level: 9 }).length, () => 0)));
    await p.addInitScript(() => {
      document.addEventListener("playing", () => ((window as unknown as { __ttff?: number }).__ttff ??= performance.now()), { capture: true });
    });
    await p.goto(`${edge.url}/watch/${streamId}${await tokenFragment(`viewer-${run}`)}`);
    await p.waitForFunction(() => (window as unknown as { __ttff?: number }).__ttff !== undefined, null, { timeout: 60_000 });
    const ttff = (await p.evaluate(() => (window as unknown as { __ttff: number }).__ttff)) / 1000;
    ttffs.push(ttff);
    log(`run ${run}: first frame after ${ttff.toFixed(2)} s`);
    if (run === 0) {
      scriptBytes = (await Promise.all(scripts)).reduce((a, b) => a + b, 0);
      log(`scripts loaded: ${scripts.length}, ${scriptBytes} bytes gzipped`);
    }
    if (run === RUNS - 1) page = p;
    else await ctx.close();
  }

  // Live latency on the page left playing: publisher's sent media time vs the media time on screen.
  const p = page!;
  const lags: number[] = [];
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const shown = await p.locator("#video").evaluate((v: HTMLVideoElement) => v.currentTime);
    const sent = sentSeconds(publisher);
    lags.push(sent - shown);
  }
  log("latency samples (s)", lags.map((l) => l.toFixed(2)).join(" "));

  // Chat round trip from the page, one message at a time, below the room's rate limit.
  await p.waitForFunction(() => (window as unknown as Handle).pulsecast?.room.state === "open");
  const rtts: number[] = [];
  for (let i = 0; i < SAMPLES + 5; i++) {
    const ms = await p.evaluate(async (n) => {
      const t0 = performance.now();
      await (window as unknown as Handle).pulsecast.room.send(`rtt ${n}`);
      return performance.now() - t0;
    }, i);
    if (i >= 5) rtts.push(ms);
    await new Promise((r) => setTimeout(r, 60));
  }
  log(`chat rtt p90 ${percentile(rtts, 90).toFixed(1)} ms`);

  console.log(
    JSON.stringify({
      watch_ttff_s: round(median(ttffs)),
      live_latency_s: round(median(lags)),
      page_js_kb: round(scriptBytes / 1024),
      chat_rtt_p50_ms: round(median(rtts)),
    }),
  );
} finally {
  await publisher.stop();
  await browser.close();
  await bridge.stop();
  await edge.stop();
  await media.stop();
}
