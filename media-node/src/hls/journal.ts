// What a broadcast has stored so far, kept where its segments are, so that another node can continue the
// broadcast (or end it properly) after the node that ran it died.
//
// A live playlist lists only the last MEDIA_LIVE_WINDOW segments; the recording needs all of them. So each
// variant also stores its segment list in journal pages (`<keyBase>/<variant>/segments/<page>.json`), one page per
// `pageSize` segments, each written once, when it is full. A page is stored before the live playlist that slides
// its first segment out of the window (hls/publisher.ts awaits it), and pages are smaller than the window, so the
// pages plus the stored live playlist always hold every segment a viewer could have seen. Reading them back:
// the live playlist gives the media sequence (how many segments came before its window) and the window itself;
// the pages give everything before.
//
// Storage cost: one small JSON object per `pageSize` segments per variant, never rewritten.

import { z } from "zod";
import type { ObjectStore } from "../storage/types.ts";
import type { PlaylistSegment } from "./playlists.ts";

/** Segments per journal page for a live window: smaller than the window (see above), at most 50. */
export function journalPageSize(liveWindow: number): number {
  return Math.max(1, Math.min(liveWindow - 1, 50));
}

export function journalPageKey(keyBase: string, variant: string, page: number): string {
  return `${keyBase}/${variant}/segments/${page}.json`;
}

const pageSchema = z.object({
  v: z.literal(1),
  /** index (in the variant's whole list) of the first segment of the page */
  first: z.number().int().nonnegative(),
  segments: z.array(
    z.object({
      uri: z.string().min(1).max(256),
      d: z.number().nonnegative(),
      map: z.string().min(1).max(256),
      disc: z.boolean().optional(),
      pdt: z.number().optional(),
    }),
  ),
});

export function renderJournalPage(first: number, segments: readonly PlaylistSegment[]): string {
  return JSON.stringify({
    v: 1,
    first,
    segments: segments.map((s) => ({ uri: s.uri, d: s.durationS, map: s.map, ...(s.discontinuity ? { disc: true } : {}), ...(s.programDateTimeMs !== undefined ? { pdt: s.programDateTimeMs } : {}) })),
  });
}

export function parseJournalPage(text: string): { first: number; segments: PlaylistSegment[] } | undefined {
  try {
    const parsed = pageSchema.safeParse(JSON.parse(text));
    if (!parsed.success) return undefined;
    return { first: parsed.data.first, segments: parsed.data.segments.map((s) => ({ uri: s.uri, durationS: s.d, map: s.map, discontinuity: s.disc ?? false, programDateTimeMs: s.pdt })) };
  } catch {
    return undefined;
  }
}

/**
 * Reads back one of our own live (or VOD) media playlists (playlists.ts renderMediaPlaylist). The first listed
 * segment's discontinuity is not written there (nothing precedes it in the list): the journal has it.
 */
export function parseMediaPlaylist(text: string): { mediaSequence: number; segments: PlaylistSegment[]; ended: boolean } {
  const segments: PlaylistSegment[] = [];
  let mediaSequence = 0;
  let map = "";
  let duration: number | undefined;
  let discontinuity = false;
  let pdt: number | undefined;
  let ended = false;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith("#EXT-X-MEDIA-SEQUENCE:")) mediaSequence = Number(line.slice(22)) || 0;
    else if (line.startsWith("#EXT-X-MAP:")) map = line.match(/URI="([^"]+)"/)?.[1] ?? map;
    else if (line === "#EXT-X-DISCONTINUITY") discontinuity = true;
    else if (line.startsWith("#EXT-X-PROGRAM-DATE-TIME:")) {
      const t = Date.parse(line.slice(25));
      pdt = Number.isFinite(t) ? t : undefined;
    } else if (line.startsWith("#EXTINF:")) duration = Number.parseFloat(line.slice(8));
    else if (line === "#EXT-X-ENDLIST") ended = true;
    else if (!line.startsWith("#") && duration !== undefined) {
      segments.push({ uri: line, durationS: duration, map, discontinuity, programDateTimeMs: pdt });
      duration = undefined;
      discontinuity = false;
      pdt = undefined;
    }
  }
  return { mediaSequence, segments, ended };
}

export interface StoredVariant {
  segments: PlaylistSegment[];
  /** the live playlist said ENDLIST: the broadcast was ended on this variant (or the variant was shed) */
  ended: boolean;
  /** segments the journal should have held but did not (a page missing): the list has a hole there */
  missing: number;
  /** when the live playlist was last stored (ms since the epoch; the store's clock), if the store says */
  storedAt: number | undefined;
}

/**
 * Every segment stored for one variant of a broadcast, in order (journal pages + the live playlist's window).
 * undefined when the variant has no live playlist (nothing of it was stored).
 */
export async function loadStoredVariant(store: ObjectStore, keyBase: string, variant: string, pageSize: number): Promise<StoredVariant | undefined> {
  const live = await store.get(`${keyBase}/${variant}/index.m3u8`);
  if (!live) return undefined;
  const playlist = parseMediaPlaylist(new TextDecoder().decode(live.body));
  const m = playlist.mediaSequence;
  const pages = Math.ceil(m / pageSize);
  const before: (PlaylistSegment | undefined)[] = new Array(m).fill(undefined);
  // Pages in parallel, a few at a time (a long broadcast has many).
  let next = 0;
  const overlap = new Map<number, PlaylistSegment>();
  await Promise.all(
    Array.from({ length: Math.min(16, pages) }, async () => {
      while (next < pages) {
        const page = next++;
        const obj = await store.get(journalPageKey(keyBase, variant, page));
        const parsed = obj ? parseJournalPage(new TextDecoder().decode(obj.body)) : undefined;
        if (!parsed) continue;
        parsed.segments.forEach((s, i) => {
          const index = parsed.first + i;
          if (index < m) before[index] = s;
          else overlap.set(index, s);
        });
      }
    }),
  );
  const missing = before.filter((s) => s === undefined).length;
  const windowed = playlist.segments.map((s, i) => {
    // The journal's copy knows whether the window's first segment began a run (the playlist cannot say).
    const fromPage = overlap.get(m + i);
    return fromPage && fromPage.uri === s.uri ? { ...s, discontinuity: fromPage.discontinuity } : s;
  });
  return { segments: [...before.filter((s): s is PlaylistSegment => s !== undefined), ...windowed], ended: playlist.ended, missing, storedAt: live.lastModified?.getTime() };
}

/** The FFmpeg run (epoch) a segment came from: our names are `e<epoch>-<n>.m4s`. */
export function epochOf(uri: string): number | undefined {
  const m = /^e(\d+)-/.exec(uri);
  return m ? Number(m[1]) : undefined;
}

/** When the newest of these segments ended, by its PROGRAM-DATE-TIME (undefined without any). */
export function lastMediaEnd(lists: Iterable<readonly PlaylistSegment[]>): number | undefined {
  let end: number | undefined;
  for (const list of lists) {
    const last = list.at(-1);
    if (last?.programDateTimeMs !== undefined) end = Math.max(end ?? 0, last.programDateTimeMs + last.durationS * 1000);
  }
  return end;
}
