// Ending a broadcast whose node died and whose broadcaster did not come back in time: what its node would have
// done at the end of the grace window, done by whichever node finds it (orphan sweep, or a publish that comes
// too late to continue it). The live playlists get ENDLIST, the recording its VOD playlists, and the room hears
// stream.ended (and media.ready for a recording), so nobody waits for a broadcast that is over.

import { makeEvent } from "../../../shared/envelope.ts";
import type { Envelope } from "../../../shared/envelope.ts";
import type { EventSink } from "../bus/event-bus.ts";
import { loadStoredVariant, lastMediaEnd } from "../hls/journal.ts";
import { CACHE, type PlaylistSegment, renderMediaPlaylist } from "../hls/playlists.ts";
import type { Logger } from "../log.ts";
import type { ObjectStore, Uploader } from "../storage/types.ts";
import type { BroadcastState } from "./broadcasts.ts";

/**
 * Every variant's stored segments (variants with nothing stored are left out), how many went missing, and when the
 * broadcast was last active: its last stored playlist write, or the end of its newest segment by the broadcaster's
 * clock, whichever is later (an encoder running behind live stores segments whose media is seconds old).
 */
export async function loadBroadcast(store: ObjectStore, state: BroadcastState): Promise<{ segments: Map<string, PlaylistSegment[]>; missing: number; lastActiveMs: number }> {
  const segments = new Map<string, PlaylistSegment[]>();
  let missing = 0;
  let storedAt = state.startedAt;
  await Promise.all(
    state.variants.map(async (v) => {
      const stored = await loadStoredVariant(store, state.keyBase, v, state.journalPage);
      if (!stored) return;
      segments.set(v, stored.segments);
      missing += stored.missing;
      storedAt = Math.max(storedAt, stored.storedAt ?? 0);
    }),
  );
  return { segments, missing, lastActiveMs: Math.max(storedAt, lastMediaEnd(segments.values()) ?? 0) };
}

export interface OrphanDeps {
  store: ObjectStore;
  uploader: Uploader;
  events: EventSink;
  publicUrl(key: string): string;
  nodeId: string;
  log: Logger;
}

/**
 * Ends `state`'s broadcast from what is stored. Resolves once its playlists are stored and its events are in the
 * outbox. `reason`: publisher-left (its broadcaster did not come back), node-shutdown (its node drained and no
 * other node took it over).
 */
export async function endOrphanBroadcast(state: BroadcastState, deps: OrphanDeps, loaded?: { segments: Map<string, PlaylistSegment[]> }, reason: "publisher-left" | "node-shutdown" = "publisher-left"): Promise<void> {
  const log = deps.log.child({ component: "orphans", streamId: state.streamId, broadcastId: state.broadcastId });
  const { segments } = loaded ?? (await loadBroadcast(deps.store, state));
  const withSegments = [...segments].filter(([, list]) => list.length > 0);
  const durationS = Math.round(Math.max(0, ...withSegments.map(([, list]) => list.reduce((t, s) => t + s.durationS, 0))) * 1000) / 1000;
  await Promise.all(
    withSegments.map(([v, list]) =>
      deps.uploader.uploadBody(`${state.keyBase}/${v}/index.m3u8`, renderMediaPlaylist(list, { targetS: state.segmentS, kind: "live", window: state.liveWindow, ended: true }), { cacheControl: CACHE.livePlaylist, replaceQueued: true }),
    ),
  );
  let vodKey: string | undefined;
  if (state.record && withSegments.length > 0) {
    const master = await deps.store.get(`${state.keyBase}/master.m3u8`);
    await Promise.all(withSegments.map(([v, list]) => deps.uploader.uploadBody(`${state.keyBase}/${v}/vod.m3u8`, renderMediaPlaylist(list, { targetS: state.segmentS, kind: "vod", ended: true }), { cacheControl: CACHE.segment })));
    if (master) {
      // The live master lists <variant>/index.m3u8; the recording's lists each variant's vod.m3u8 (the variants
      // without stored segments are dropped from it).
      const have = new Set(withSegments.map(([v]) => v));
      const lines = new TextDecoder().decode(master.body).split("\n");
      const out: string[] = [];
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i]!;
        const uri = line.match(/^([^#][^/]*)\/index\.m3u8$/)?.[1];
        const mediaUri = line.match(/URI="([^"/]+)\/index\.m3u8"/)?.[1];
        if (uri !== undefined) {
          if (!have.has(uri)) {
            out.pop(); // its #EXT-X-STREAM-INF
            continue;
          }
          out.push(`${uri}/vod.m3u8`);
        } else if (mediaUri !== undefined) {
          if (have.has(mediaUri)) out.push(line.replace(`${mediaUri}/index.m3u8`, `${mediaUri}/vod.m3u8`));
        } else out.push(line);
      }
      vodKey = `${state.keyBase}/vod.m3u8`;
      await deps.uploader.uploadBody(vodKey, out.join("\n"), { cacheControl: CACHE.segment });
    }
  }
  const vodUrl = vodKey ? deps.publicUrl(vodKey) : undefined;
  const source = `media-node/${deps.nodeId}`;
  const subject = `stream/${state.streamId}`;
  const roomId = state.roomId;
  await deps.events.publish(
    makeEvent("stream.ended", { streamId: state.streamId, ...(roomId ? { roomId } : {}), nodeId: deps.nodeId, durationS, reason, broadcastId: state.broadcastId, ...(vodUrl && vodKey ? { vodUrl, vodKey } : {}) }, { source, subject }) as Envelope,
  );
  if (vodUrl && vodKey) {
    await deps.events.publish(
      makeEvent("media.ready", { mediaId: state.broadcastId, streamId: state.streamId, ...(roomId ? { roomId } : {}), ...(state.ownerId ? { ownerId: state.ownerId } : {}), playbackUrl: vodUrl, playlistKey: vodKey, durationS }, { source, subject }) as Envelope,
    );
  }
  log.info("stream ended", { reason, startedOn: state.nodeId, durationS, segments: Object.fromEntries(withSegments.map(([v, l]) => [v, l.length])), vodKey, why: reason === "node-shutdown" ? "its node drained and no other node took it over" : "its node stopped and its broadcaster did not come back in time" });
}
