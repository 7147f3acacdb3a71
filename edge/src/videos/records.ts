// A video as the edge knows it, and how events from the media side move it along. Pure: the library object
// (library.ts) stores the result. Status only moves forward (uploading -> queued -> processing -> playable ->
// ready, or failed), so a late progress report never takes a ready video back.

import type { Envelope } from "../../../shared/envelope.ts";
import type { MediaStage } from "../../../shared/events/media.ts";
import type { Rendition } from "../../../shared/events/common.ts";

export const VIDEO_STATUSES = ["uploading", "queued", "processing", "playable", "ready", "failed"] as const;
export type VideoStatus = (typeof VIDEO_STATUSES)[number];

/** Who may play a video: anyone with its id (`public`), or only with a viewer token (`signed`), as for streams. */
export const VIDEO_POLICIES = ["public", "signed"] as const;
export type VideoPolicy = (typeof VIDEO_POLICIES)[number];

const RANK: Record<VideoStatus, number> = { uploading: 0, queued: 1, processing: 2, playable: 3, ready: 4, failed: 4 };

export interface VideoRecord {
  id: string;
  ownerId: string;
  title: string;
  filename: string;
  /** bytes announced by the upload (Upload-Length) */
  size: number;
  status: VideoStatus;
  createdAt: number;
  updatedAt: number;
  /** an unfinished upload expires then */
  uploadExpiresAt: number | null;
  progress: { stage: MediaStage; percent: number } | null;
  durationS: number | null;
  renditions: Rendition[];
  keys: { master?: string; poster?: string; storyboard?: string; storyboardJson?: string; thumbnails?: string[] };
  failure: { stage?: MediaStage; reason: string } | null;
  /** a recording of this live stream (recordings appear next to uploads) */
  streamId: string | null;
  /** a recording's playback URL as the media node announced it, when its event names no object keys */
  announcedPlaybackUrl?: string | null;
  /** absent on records stored before policies existed: public */
  playbackPolicy?: VideoPolicy;
}

export function policyOf(v: Pick<VideoRecord, "playbackPolicy">): VideoPolicy {
  return v.playbackPolicy ?? "public";
}

/** The folder of a video's outputs (its master playlist's), which /play serves it from; unknown before media.playable. */
export function outputPrefixOf(v: Pick<VideoRecord, "keys">): string | undefined {
  const master = v.keys.master;
  const slash = master?.lastIndexOf("/") ?? -1;
  return master && slash > 0 ? master.slice(0, slash) : undefined;
}

/**
 * The folder a video's outputs are deleted from: the folder of the master playlist a media node reported, but only
 * when that is this video's own folder (ends in /<id>), so a malformed key can never widen a delete to other
 * videos or the whole bucket; otherwise the default `<vodKeyPrefix>/<id>/`.
 */
export function outputFolderToDelete(v: Pick<VideoRecord, "id" | "keys">, vodKeyPrefix: string): string {
  const reported = outputPrefixOf(v);
  return reported !== undefined && reported.endsWith(`/${v.id}`) ? `${reported}/` : `${vodKeyPrefix}/${v.id}/`;
}

/** What an event does to a record: the new record, `unchanged`, or `create` for a recording not known yet. */
export type RecordChange = { kind: "update"; record: VideoRecord } | { kind: "unchanged" } | { kind: "create"; record: VideoRecord };

export function applyMediaEvent(current: VideoRecord | null, event: Envelope, now: number): RecordChange {
  if (event.type !== "media.progress" && event.type !== "media.playable" && event.type !== "media.ready" && event.type !== "media.failed") return { kind: "unchanged" };
  const d = event.data;
  if (!current) {
    // A finished recording of a live broadcast: it becomes a video of its owner.
    if (event.type === "media.ready" && d.ownerId && event.data.streamId) {
      const r = event.data;
      return {
        kind: "create",
        record: {
          id: r.mediaId,
          ownerId: r.ownerId!,
          title: `Recording of ${r.streamId}`,
          filename: "",
          size: 0,
          status: "ready",
          createdAt: now,
          updatedAt: now,
          uploadExpiresAt: null,
          progress: null,
          durationS: r.durationS,
          renditions: r.renditions ?? [],
          // A live recording names its playlist by playlistKey (it plays under its stream's id and policy).
          keys: r.keys ?? (r.playlistKey ? { master: r.playlistKey } : {}),
          failure: null,
          streamId: r.streamId ?? null,
          announcedPlaybackUrl: r.keys?.master || r.playlistKey ? null : r.playbackUrl,
        },
      };
    }
    return { kind: "unchanged" };
  }
  const next: VideoRecord = { ...current, updatedAt: now };
  switch (event.type) {
    case "media.progress":
      if (RANK[current.status] > RANK.playable) return { kind: "unchanged" };
      next.progress = { stage: event.data.stage, percent: event.data.percent };
      if (RANK[current.status] < RANK.processing) next.status = "processing";
      break;
    case "media.playable":
      if (RANK[current.status] >= RANK.playable) return { kind: "unchanged" };
      next.status = "playable";
      next.keys = { ...current.keys, master: event.data.masterKey };
      next.renditions = event.data.renditions;
      break;
    case "media.ready":
      if (current.status === "ready" || current.status === "failed") return { kind: "unchanged" };
      next.status = "ready";
      next.progress = null;
      next.durationS = event.data.durationS;
      next.renditions = event.data.renditions ?? current.renditions;
      next.keys = { ...current.keys, ...(event.data.keys ?? {}) };
      next.uploadExpiresAt = null;
      break;
    case "media.failed":
      if (current.status === "ready" || current.status === "failed") return { kind: "unchanged" };
      next.status = "failed";
      next.progress = null;
      next.failure = { ...(event.data.stage ? { stage: event.data.stage } : {}), reason: event.data.reason };
      next.uploadExpiresAt = null;
      break;
  }
  return { kind: "update", record: next };
}
