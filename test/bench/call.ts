// `npm run bench:call`: one JSON line about calls, measured in Debian's Chromium (fake cameras, loopback
// candidates) on the call page against the edge under wrangler dev, all on 127.0.0.1. A script, not a test.
//   join_to_media_ms     a page's click on "Join call" (its camera already open) -> the first frame decoded from
//                        each peer already in the call; the 2nd and 3rd joiner of each run give 1 + 2 samples.
//                        Joins are SETTLE_MS apart (the call has been running for a moment, as when people join
//                        one after another); on alternate runs they follow each other at once (the previous joiner's
//                        first frame, then the next click), reported apart as join_back_to_back_ms
//   rejoin_to_media_ms   the 3rd page's room socket cut (a TCP proxy drops it, as a network would) -> the first
//                        frame decoded from each peer over the new peer connections, after the page reconnected and
//                        rejoined on its own (2 samples per run; reconnect backoff included)
//   signal_frames_lost   signaling frames a client wrote to a peer connection that the peer did not receive, summed
//                        over every pair of connections alive at the end of each run, plus frames refused
//                        without a resend (reported as signalError); 0 is the target
//   baseline             two peer connections in one page with the same camera, offer/answer handed over in memory:
//                        the browser's own time from offer to first decoded frame, measured in the same run
//
//   node test/bench/call.ts [runs=6]
//
// Details go to stderr; the JSON line to stdout.
import { loadavg } from "node:os";
import type { Browser, Page } from "playwright-core";
import { buildWeb } from "../../web/build.ts";
import { launchChromium, newContext, tokenFragment } from "../helpers/browser.ts";
import { startEdge } from "../helpers/edge.ts";
import { startProxy } from "../helpers/tcp-proxy.ts";
import { median, percentile, round } from "./lib/stats.ts";

const RUNS = Number(process.argv[2] ?? 6);
/** How long a call runs before the next page joins (in settled runs) and before the cut. */
const SETTLE_MS = 2000;
const log = (...args: unknown[]) => console.error("[bench:call]", ...args);

type Win = {
  pulsecast: {
    room: {
      state: string;
      connectionId: string;
      signalCounts(): { sentTo: Record<string, number>; receivedFrom: Record<string, number>; resent: number; refused: number };
      on(e: string, l: (v: unknown) => void): () => void;
    };
    call: {
      state: string;
      connectionId: string;
      peers: Map<string, { info: { userId: string } }>;
      receiver(id: string, slot: string): RTCRtpReceiver | undefined;
      on(e: string, l: (v: unknown) => void): () => void;
    };
  };
  __bench: { t0: number; first: Record<string, number>; errors: number; want: number };
};

await buildWeb();
const edge = await startEdge({ CALL_STUN_URLS: "none" });
const proxy = await startProxy(edge.port);
const browser: Browser = await launchChromium({ media: true });
const loadAtStart = loadavg()[0]!;

/** Opens the call page for `user` and waits for its camera preview (the camera is open). */
async function openCall(roomId: string, user: string, base = edge.url): Promise<Page> {
  const page = await (await newContext(browser)).newPage();
  await page.goto(`${base}/call/${roomId}${await tokenFragment(user)}`);
  await page.getByRole("button", { name: "Join call" }).waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => (document.getElementById("preview") as HTMLVideoElement | null)?.videoWidth, null, { timeout: 30_000 });
  // Counts signalError reports (refusals that were not resent) from here on.
  await page.evaluate(() => {
    const w = window as unknown as Win;
    w.__bench = { t0: 0, first: {}, errors: 0, want: 0 };
    w.pulsecast.room.on("signalError", (e) => {
      if ((e as { code: string }).code !== "disconnected") w.__bench.errors++;
    });
  });
  return page;
}

/**
 * Starts watching, from now, for the first decoded frame of `want` peers (by connection id, so a rejoin's new
 * peer connections count, not the old ones); `action` runs in the page right after t0.
 */
async function armFirstFrames(page: Page, want: number, action: "join" | "none"): Promise<void> {
  await page.evaluate(
    ({ want, action }) => {
      const w = window as unknown as Win;
      const b = w.__bench;
      b.t0 = performance.now();
      b.first = {};
      b.want = want;
      const seenBefore = new Set<RTCRtpReceiver>();
      for (const [id] of w.pulsecast.call.peers) {
        const r = w.pulsecast.call.receiver(id, "camera");
        if (r) seenBefore.add(r);
      }
      const tick = async () => {
        for (const [id, p] of w.pulsecast.call.peers) {
          const key = `${p.info.userId}:${id}`;
          if (key in b.first) continue;
          const r = w.pulsecast.call.receiver(id, "camera");
          if (!r || seenBefore.has(r)) continue;
          let frames = 0;
          (await r.getStats()).forEach((s: { type: string; kind?: string; framesDecoded?: number }) => {
            if (s.type === "inbound-rtp" && s.kind === "video") frames = s.framesDecoded ?? 0;
          });
          if (frames > 0) b.first[key] = performance.now() - b.t0;
        }
        if (Object.keys(b.first).length < b.want) setTimeout(() => void tick(), 5);
      };
      void tick();
      if (action === "join") (document.getElementById("join") as HTMLButtonElement).click();
    },
    { want, action },
  );
}

async function firstFrames(page: Page, timeoutMs = 30_000): Promise<number[]> {
  await page.waitForFunction(() => {
    const b = (window as unknown as Win).__bench;
    return Object.keys(b.first).length >= b.want;
  }, null, { timeout: timeoutMs, polling: 20 });
  return page.evaluate(() => Object.values((window as unknown as Win).__bench.first));
}

/** Signaling frames lost between the pages' live connections, plus refusals that were not resent. */
async function lostSignals(pages: Page[]): Promise<{ lost: number; refusedNotResent: number; resent: number; pairs: number }> {
  const views = await Promise.all(
    pages.map((p) =>
      p.evaluate(() => {
        const w = window as unknown as Win;
        return { id: w.pulsecast.room.connectionId, counts: w.pulsecast.room.signalCounts(), errors: w.__bench.errors };
      }),
    ),
  );
  let lost = 0;
  let pairs = 0;
  for (const from of views) {
    for (const to of views) {
      if (from === to) continue;
      const sent = from.counts.sentTo[to.id] ?? 0;
      const got = to.counts.receivedFrom[from.id] ?? 0;
      if (sent === 0 && got === 0) continue;
      pairs++;
      lost += Math.max(0, sent - got);
    }
  }
  return { lost, refusedNotResent: views.reduce((a, v) => a + v.errors, 0), resent: views.reduce((a, v) => a + v.counts.resent, 0), pairs };
}

/** The browser alone: two peer connections in one page, the same camera, SDP handed over in memory. */
async function baselinePair(page: Page): Promise<number> {
  return page.evaluate(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } } });
    const a = new RTCPeerConnection();
    const b = new RTCPeerConnection();
    a.onicecandidate = (e) => e.candidate && void b.addIceCandidate(e.candidate);
    b.onicecandidate = (e) => e.candidate && void a.addIceCandidate(e.candidate);
    for (const t of stream.getTracks()) a.addTrack(t, stream);
    const t0 = performance.now();
    await a.setLocalDescription();
    await b.setRemoteDescription(a.localDescription!);
    await b.setLocalDescription();
    await a.setRemoteDescription(b.localDescription!);
    for (;;) {
      let frames = 0;
      (await b.getStats()).forEach((s: { type: string; kind?: string; framesDecoded?: number }) => {
        if (s.type === "inbound-rtp" && s.kind === "video") frames = s.framesDecoded ?? 0;
      });
      if (frames > 0) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const ms = performance.now() - t0;
    a.close();
    b.close();
    for (const t of stream.getTracks()) t.stop();
    return ms;
  });
}

const joins: number[] = [];
const backToBack: number[] = [];
const rejoins: number[] = [];
const baselines: number[] = [];
let lostTotal = 0;
let refusedTotal = 0;
let resentTotal = 0;
try {
  for (let run = 0; run < RUNS; run++) {
    const roomId = `bench-call-${Date.now().toString(36)}-${run}`;
    const a = await openCall(roomId, "ada");
    const b = await openCall(roomId, "bo");
    // The third page reaches the edge through a proxy that can drop its socket.
    const c = await openCall(roomId, "cy", proxy.url);
    const settled = run % 2 === 0;
    const settle = () => (settled ? a.waitForTimeout(SETTLE_MS) : Promise.resolve());
    await armFirstFrames(a, 0, "join");
    await a.waitForFunction(() => (window as unknown as Win).pulsecast.call.state === "in-call");
    await settle();
    await armFirstFrames(b, 1, "join");
    const bJoin = await firstFrames(b);
    await settle();
    await armFirstFrames(c, 2, "join");
    const cJoin = await firstFrames(c);
    (settled ? joins : backToBack).push(...bJoin, ...cJoin);
    log(`run ${run} (${settled ? "settled" : "back to back"}): joined, first frames after ${[...bJoin, ...cJoin].map((x) => x.toFixed(0)).join(" ")} ms`);

    // Everyone sees everyone before the cut.
    for (const p of [a, b]) await p.waitForFunction(() => (window as unknown as Win).pulsecast.call.peers.size === 2, null, { timeout: 30_000 });
    const before = await lostSignals([a, b, c]);
    await a.waitForTimeout(SETTLE_MS);
    await armFirstFrames(c, 2, "none");
    proxy.cut();
    const cRejoin = await firstFrames(c);
    rejoins.push(...cRejoin);
    // Frames still on their way are not lost: count once every page's view agrees, or after 5 s (what is
    // missing then stays missing).
    for (const p of [a, b]) await p.waitForFunction(() => (window as unknown as Win).pulsecast.call.peers.size === 2, null, { timeout: 30_000 });
    let after = await lostSignals([a, b, c]);
    for (const until = Date.now() + 5_000; after.lost > 0 && Date.now() < until; ) after = await lostSignals([a, b, c]);
    lostTotal += after.lost;
    refusedTotal += after.refusedNotResent;
    resentTotal += after.resent;
    baselines.push(await baselinePair(a));
    log(`run ${run}: rejoin ${cRejoin.map((x) => x.toFixed(0)).join(" ")} ms; signals lost ${before.lost} before the cut, ${after.lost} after (${after.pairs} pairs), refused ${after.refusedNotResent}, resent ${after.resent}; baseline ${baselines.at(-1)!.toFixed(0)} ms; load ${loadavg()[0]!.toFixed(2)}`);
    for (const p of [a, b, c]) await p.context().close();
  }
  console.log(
    JSON.stringify({
      peers: 3,
      join_to_media_ms_p50: round(median(joins)),
      rejoin_to_media_ms_p50: round(median(rejoins)),
      signal_frames_lost: lostTotal + refusedTotal,
      join_to_media_ms_p90: round(percentile(joins, 90)),
      join_back_to_back_ms_p50: round(median(backToBack)),
      rejoin_to_media_ms_p90: round(percentile(rejoins, 90)),
      baseline_pair_ms_p50: round(median(baselines)),
      join_over_baseline: round(median(joins) / median(baselines)),
      runs: RUNS,
      join_samples: joins.length,
      join_back_to_back_samples: backToBack.length,
      rejoin_samples: rejoins.length,
      signal_frames_resent: resentTotal,
      load_avg_1m: round(loadAtStart),
    }),
  );
} finally {
  await browser.close();
  await proxy.close();
  await edge.stop();
}
