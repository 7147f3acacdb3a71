// What a media node tells the edge about a low-latency (LL-HLS) broadcast as it happens: the renditions when a
// broadcast starts, each part once it is stored, each segment once it is stored, and the end. The edge's
// per-stream object renders the LL-HLS playlists from these alone, so every field a playlist needs is here.
// Checked with this one schema on both sides (the node before it sends, the edge before it applies).
//
// Announcements are idempotent (a part or segment already known changes nothing), so a node may resend a batch
// whose answer it did not get; within a stream they are sent one batch at a time, in order.
import { z } from "zod";
import { streamId } from "../events/common.ts";

/** Object names inside a rendition's folder, as the playlists list them. */
export const LL_PART_URI = /^part\d{1,12}\.m4s$/;
export const LL_SEGMENT_URI = /^seg\d{1,12}\.m4s$/;
export const LL_MAP_URI = /^e\d{1,6}-init\.mp4$/;
/** The LL-HLS media playlist of a rendition, relative to the broadcast's folder: `<rendition>/ll.m3u8`. */
export const LL_PLAYLIST_NAME = "ll.m3u8";

export const llPartUri = (id: number) => `part${id}.m4s`;
export const llSegmentUri = (msn: number) => `seg${msn}.m4s`;
export const llPartId = (uri: string): number | undefined => (LL_PART_URI.test(uri) ? Number(uri.slice(4, -4)) : undefined);

const renditionName = z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, "not a rendition name");
const broadcastId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "not a broadcast id");
const msn = z.number().int().nonnegative().max(1e12);
const seconds = z.number().positive().max(60);

export const llRendition = z.object({
  name: renditionName,
  /** PART-TARGET of this rendition's playlist, seconds */
  partTargetS: z.number().positive().max(5),
  bandwidth: z.number().int().positive().optional(),
});

export const llUpdate = z.discriminatedUnion("type", [
  /** A broadcast begins (or the node repeats it after a restart of the object): what its playlists list. */
  z.object({
    type: z.literal("start"),
    /** the configured segment duration; TARGETDURATION is at least this */
    segmentTargetS: z.number().int().positive().max(60),
    /** segments listed in a playlist (a sliding window) */
    windowSegments: z.number().int().min(3).max(10_000),
    renditions: z.array(llRendition).min(1).max(16),
  }),
  /** A part is stored and may be listed. The first part of a segment carries the segment's own tags. */
  z.object({
    type: z.literal("part"),
    rendition: renditionName,
    /** media sequence number of its parent segment */
    msn,
    /** position in the parent segment */
    index: z.number().int().nonnegative().max(1000),
    uri: z.string().regex(LL_PART_URI),
    durationS: seconds,
    independent: z.boolean(),
    /** the init segment (EXT-X-MAP) of its parent */
    map: z.string().regex(LL_MAP_URI),
    /** first part of a segment: EXT-X-PROGRAM-DATE-TIME of the segment, unix ms (the ingest time of its first frame) */
    programDateTimeMs: z.number().int().nonnegative().optional(),
    /** first part of a segment that follows a new encoder run: EXT-X-DISCONTINUITY before it */
    discontinuity: z.boolean().optional(),
  }),
  /** A segment (the concatenation of its parts) is stored: its EXTINF line may follow its parts. */
  z.object({
    type: z.literal("segment"),
    rendition: renditionName,
    msn,
    uri: z.string().regex(LL_SEGMENT_URI),
    durationS: seconds,
  }),
  /** The broadcast is over (all renditions), or these renditions are: EXT-X-ENDLIST. */
  z.object({
    type: z.literal("end"),
    renditions: z.array(renditionName).max(16).optional(),
  }),
]);
export type LlUpdate = z.infer<typeof llUpdate>;

export const llAnnounce = z.object({
  streamId,
  broadcastId,
  /** the batch's number in this broadcast (1, 2, ...), for logs and for ignoring a resent older batch */
  seq: z.number().int().positive(),
  updates: z.array(llUpdate).min(1).max(512),
});
export type LlAnnounce = z.infer<typeof llAnnounce>;

/** An announce body larger than this is refused before it is parsed. */
export const MAX_ANNOUNCE_BYTES = 256 * 1024;

export type AnnounceCheck = { ok: true; announce: LlAnnounce } | { ok: false; error: string };

export function parseAnnounce(value: unknown): AnnounceCheck {
  const r = llAnnounce.safeParse(value);
  if (r.success) return { ok: true, announce: r.data };
  return { ok: false, error: r.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ") };
}
