// The stack the live page tests run in: a real media node (test/media/fixture.ts), the edge under wrangler dev,
// the NATS->HTTP bridge carrying the node's events to it, and Chromium. The edge's port is chosen before the node
// starts: a node that checks stream keys with the edge, or announces low-latency parts to it, is told its URL.
import type { Browser } from "playwright-core";
import { type NatsToHttpBridgeProcess, startNatsToHttpBridge } from "../helpers/bridges.ts";
import { launchChromium } from "../helpers/browser.ts";
import { type EdgeServer, startEdge } from "../helpers/edge.ts";
import { freePort } from "../helpers/ports.ts";
import { type FixtureOptions, type MediaFixture, startMediaFixture } from "../media/fixture.ts";

export interface LiveWebStack {
  media: MediaFixture;
  edge: EdgeServer;
  bridge: NatsToHttpBridgeProcess;
  browser: Browser;
  /** stops all of it: the browser first, the media node last */
  stop(): Promise<void>;
}

export interface LiveWebStackOptions {
  /** the media node's options, given the edge's URL (stream-key checks, low-latency announcements) */
  node?: (edgeUrl: string) => FixtureOptions;
  /** the edge's variables, given the running node and the edge's own URL */
  edgeVars?: (media: MediaFixture, edgeUrl: string) => Record<string, string>;
}

export async function startLiveWebStack(opts: LiveWebStackOptions = {}): Promise<LiveWebStack> {
  const edgePort = await freePort();
  const edgeUrl = `http://127.0.0.1:${edgePort}`;
  const started: { stop(): Promise<unknown> }[] = [];
  const stopAll = async () => {
    for (const part of started.splice(0).reverse()) await part.stop().catch(() => undefined);
  };
  try {
    const media = await startMediaFixture({}, opts.node?.(edgeUrl) ?? {});
    started.push(media);
    const edge = await startEdge(opts.edgeVars?.(media, edgeUrl) ?? {}, { port: edgePort });
    started.push(edge);
    const bridge = await startNatsToHttpBridge({ nats: media.nats, edgeUrl: `${edge.url}/hooks/events` });
    started.push(bridge);
    const browser = await launchChromium();
    started.push({ stop: () => browser.close() });
    return { media, edge, bridge, browser, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
