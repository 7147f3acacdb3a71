// Helpers for browser tests and benchmarks of calls: what a call page (or a harness page) shows about its peers,
// read from inside the page through `globalThis.pulsecast.call` (a CallClient).
import type { Page } from "playwright-core";

export interface PeerMedia {
  connectionId: string;
  userId: string;
  connectionState: string;
  /** frames the camera slot's receiver decoded (getStats inbound-rtp) */
  framesDecoded: number;
  /** the peer's <video> element on the page: its size once frames arrive, and how far it has played */
  videoWidth: number;
  currentTime: number;
}

/** Every remote peer of the page's call, with what it decoded so far. `handle` names the global the CallClient is under. */
export function peerMedia(page: Page, handle = "pulsecast"): Promise<PeerMedia[]> {
  return page.evaluate(async (handle) => {
    type Call = {
      peers: Map<string, { info: { userId: string }; connectionState: string }>;
      receiver(id: string, slot: string): RTCRtpReceiver | undefined;
    };
    const call = (globalThis as unknown as Record<string, { call: Call }>)[handle]!.call;
    const out = [];
    for (const [id, p] of call.peers) {
      let framesDecoded = 0;
      const stats = await call.receiver(id, "camera")?.getStats();
      stats?.forEach((s: { type: string; kind?: string; framesDecoded?: number }) => {
        if (s.type === "inbound-rtp" && s.kind === "video") framesDecoded = s.framesDecoded ?? 0;
      });
      const video = document.querySelector<HTMLVideoElement>(`li[data-peer="${CSS.escape(id)}"] video`);
      out.push({ connectionId: id, userId: p.info.userId, connectionState: p.connectionState, framesDecoded, videoWidth: video?.videoWidth ?? 0, currentTime: video?.currentTime ?? 0 });
    }
    return out.sort((a, b) => a.userId.localeCompare(b.userId) || a.connectionId.localeCompare(b.connectionId));
  }, handle);
}

/** The user ids of the peers whose camera video this page decodes (frames decoded and shown in its tile). */
export async function decodingPeers(page: Page, opts: { minFrames?: number; tiles?: boolean } = {}): Promise<string[]> {
  const min = opts.minFrames ?? 1;
  return (await peerMedia(page)).filter((p) => p.framesDecoded >= min && (opts.tiles === false || p.videoWidth > 0)).map((p) => p.userId);
}
