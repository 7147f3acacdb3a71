// A VOD job is the `media.uploaded` event the edge sent when an upload finished, as JetStream stored it in the
// job stream. Checked here like any event from outside, plus what the node needs of it: a video id that can be
// part of an object key, and the key of the source.

import { createHash } from "node:crypto";
import { type Envelope, makeEvent, parseEventJson } from "../../../shared/envelope.ts";
import type { EventDataInput } from "../../../shared/events/index.ts";
import { checkObjectKey } from "../storage/keys.ts";

export interface VodJob {
  /** the event id of the media.uploaded that made the job */
  eventId: string;
  videoId: string;
  ownerId: string;
  roomId: string | undefined;
  sourceKey: string;
  size: number | undefined;
}

export type JobParse = { ok: true; job: VodJob } | { ok: false; reason: string; videoId?: string; ownerId?: string };

const VIDEO_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

export function parseJob(text: string): JobParse {
  const parsed = parseEventJson(text);
  if (!parsed.ok) return { ok: false, reason: `not a job: ${parsed.error}` };
  const event = parsed.event;
  if (event.type !== "media.uploaded") return { ok: false, reason: `not a job: a ${event.type} event` };
  const d = event.data;
  const ids = { videoId: d.mediaId, ownerId: d.ownerId };
  if (!VIDEO_ID.test(d.mediaId)) return { ok: false, reason: `media id '${d.mediaId.slice(0, 64)}' cannot name stored objects (1-128 of A-Z a-z 0-9 _ -)`, ...ids };
  const key = checkObjectKey(d.key);
  if (!key.ok) return { ok: false, reason: `source key refused: ${key.reason}`, ...ids };
  return { ok: true, job: { eventId: event.id, videoId: d.mediaId, ownerId: d.ownerId, roomId: d.roomId, sourceKey: d.key, size: d.size } };
}

/**
 * Event ids derived from the video, so a job processed twice (a node lost after publishing, a redelivery) emits
 * the same playable/ready/failed event, which JetStream and the edge's ledger then keep once.
 */
export function vodEventId(videoId: string, what: "playable" | "ready" | "failed"): string {
  return `vod_${what}_${createHash("sha256").update(videoId).digest("base64url").slice(0, 32)}`;
}

type MediaEvent = "media.progress" | "media.playable" | "media.ready" | "media.failed";

/** A media event about this video from this node. Progress ids are random (each report is news); the rest are derived. */
export function vodEvent<T extends MediaEvent>(type: T, data: EventDataInput<T>, opts: { nodeId: string; videoId: string }): Envelope<T> {
  const what = type === "media.progress" ? undefined : (type.slice("media.".length) as "playable" | "ready" | "failed");
  return makeEvent(type, data, { source: `media-node/${opts.nodeId}`, subject: `media/${opts.videoId}`, ...(what ? { id: vodEventId(opts.videoId, what) } : {}) });
}
