// A live input as the Streams API sees it, and the pure rules that move it: requests that create or change
// it, and media-node events that report on its broadcasts. Pure, so ordering and idempotence are testable
// without a Durable Object.
import { z } from "zod";
import type { Envelope } from "../../../shared/envelope.ts";
import { ROOM_ID_PATTERN, USER_ID_PATTERN } from "../../../shared/names.ts";

export const POLICIES = ["public", "signed"] as const;
export type PlaybackPolicy = (typeof POLICIES)[number];
export const LATENCY_MODES = ["normal", "low"] as const;
export type Status = "idle" | "live" | "ended" | "disabled";

export interface Rendition {
  name: string;
  width?: number;
  height?: number;
  bandwidth: number;
  codecs?: string;
}

export interface Broadcast {
  broadcastId?: string;
  nodeId: string;
  /** unix ms of stream.started */
  startedAt: number;
  /** unix ms of stream.live (first playable moment); absent while starting */
  liveAt?: number;
  renditions: Rendition[];
  masterKey?: string;
}

export interface Recording {
  mediaId: string;
  broadcastId?: string;
  /** storage key of its playlist */
  playlistKey?: string;
  durationS: number;
  /** unix ms */
  readyAt: number;
}

export interface StreamRecord {
  id: string;
  ownerId: string;
  roomId: string;
  title?: string;
  record: boolean;
  latencyMode: (typeof LATENCY_MODES)[number];
  policy: PlaybackPolicy;
  /** current stream key version; every lower one is revoked */
  keyVersion: number;
  disabled: boolean;
  /** the broadcast in progress, if any */
  current?: Broadcast;
  /** the last one that ended */
  last?: Broadcast & { endedAt: number; reason: string };
  /** unix ms of the latest lifecycle event applied (older ones change nothing) */
  eventAt: number;
  recordings: Recording[];
  createdAt: number;
  updatedAt: number;
}

/** Recordings kept on a stream (newest first); older ones remain in storage, and in the owner's inbox events. */
export const MAX_RECORDINGS = 50;

export function statusOf(s: StreamRecord): Status {
  if (s.disabled) return "disabled";
  if (s.current) return "live";
  return s.last ? "ended" : "idle";
}

function sameLatency(b: { latency?: string | undefined; latencyMode?: string | undefined }): boolean {
  return !(b.latency && b.latencyMode && b.latency !== b.latencyMode);
}

export const createBody = z
  .object({
    title: z.string().trim().min(1).max(200).optional(),
    record: z.boolean().optional(),
    latencyMode: z.enum(LATENCY_MODES).optional(),
    /** the same as latencyMode, under the name the pages and docs use */
    latency: z.enum(LATENCY_MODES).optional(),
    playbackPolicy: z.enum(POLICIES).optional(),
    /** room whose viewers follow the stream; defaults to the stream id */
    roomId: z.string().regex(ROOM_ID_PATTERN, "not a valid room id").optional(),
  })
  .strict()
  .refine(sameLatency, { message: "latency and latencyMode disagree", path: ["latency"] });
export type CreateBody = z.infer<typeof createBody>;

export const updateBody = z
  .object({
    title: z.string().trim().min(1).max(200).nullable().optional(),
    record: z.boolean().optional(),
    latencyMode: z.enum(LATENCY_MODES).optional(),
    latency: z.enum(LATENCY_MODES).optional(),
    playbackPolicy: z.enum(POLICIES).optional(),
  })
  .strict()
  .refine(sameLatency, { message: "latency and latencyMode disagree", path: ["latency"] });
export type UpdateBody = z.infer<typeof updateBody>;

export const tokenBody = z
  .object({
    /** lifetime in seconds (default PLAYBACK_TOKEN_DEFAULT_TTL_S, at most PLAYBACK_TOKEN_MAX_TTL_S) */
    expiresIn: z.number().int().positive().optional(),
    /** not valid before this unix time (seconds); default now */
    notBefore: z.number().int().nonnegative().optional(),
    viewerId: z.string().regex(USER_ID_PATTERN, "not a valid viewer id").optional(),
  })
  .strict();

export function newRecord(init: { id: string; ownerId: string; body: CreateBody; now: number }): StreamRecord {
  const { body } = init;
  const r: StreamRecord = {
    id: init.id,
    ownerId: init.ownerId,
    roomId: body.roomId ?? init.id,
    record: body.record ?? true,
    latencyMode: body.latencyMode ?? body.latency ?? "normal",
    policy: body.playbackPolicy ?? "public",
    keyVersion: 1,
    disabled: false,
    eventAt: 0,
    recordings: [],
    createdAt: init.now,
    updatedAt: init.now,
  };
  if (body.title !== undefined) r.title = body.title;
  return r;
}

export function applyUpdate(r: StreamRecord, body: UpdateBody, now: number): StreamRecord {
  const next: StreamRecord = { ...r, updatedAt: now };
  if (body.title === null) delete next.title;
  else if (body.title !== undefined) next.title = body.title;
  if (body.record !== undefined) next.record = body.record;
  const latency = body.latencyMode ?? body.latency;
  if (latency !== undefined) next.latencyMode = latency;
  if (body.playbackPolicy !== undefined) next.policy = body.playbackPolicy;
  return next;
}

/**
 * Folds one media-node event into the stream. Events arrive at least once (the caller deduplicates by id)
 * and possibly out of order: a lifecycle event older than the latest one applied changes nothing, and a
 * stream.live or stream.ended for another broadcast than the current one is ignored.
 */
export function nextStreamRecord(r: StreamRecord, event: Envelope): StreamRecord {
  const at = Date.parse(event.time);
  switch (event.type) {
    case "stream.started": {
      if (at < r.eventAt) return r;
      const d = event.data;
      if (d.resumed && r.current && (!d.broadcastId || d.broadcastId === r.current.broadcastId)) return { ...r, eventAt: at, current: { ...r.current, nodeId: d.nodeId } };
      // A shed that arrived before its broadcast's start already holds the renditions kept.
      const early = d.broadcastId !== undefined && r.current?.broadcastId === d.broadcastId ? r.current.renditions : [];
      const current: Broadcast = { nodeId: d.nodeId, startedAt: at, renditions: early };
      if (d.broadcastId) current.broadcastId = d.broadcastId;
      return { ...r, eventAt: at, current };
    }
    case "stream.live": {
      if (at < r.eventAt) return r;
      const d = event.data;
      const base: Broadcast = r.current && (!d.broadcastId || !r.current.broadcastId || r.current.broadcastId === d.broadcastId) ? r.current : { nodeId: d.nodeId, startedAt: at, renditions: [] };
      // A shed that arrived first (fewer renditions, same broadcast) is newer than this event's full ladder.
      const shed = base.renditions.length > 0 && base.renditions.length < d.renditions.length;
      const current: Broadcast = { ...base, nodeId: d.nodeId, liveAt: base.liveAt ?? at, renditions: shed ? base.renditions : d.renditions.map(cleanRendition) };
      if (d.broadcastId) current.broadcastId = d.broadcastId;
      if (d.masterKey) current.masterKey = d.masterKey;
      return { ...r, eventAt: at, current };
    }
    case "stream.degraded": {
      // The node shed rungs of the current broadcast: the renditions it plays from now on. Sheds only remove
      // rungs, so the list with fewer entries is the later one whatever the arrival order; a shed of another
      // broadcast changes nothing.
      const d = event.data;
      if (!r.current) {
        // Its broadcast's start is still on the way (a shed of a broadcast that ended, or older than the latest
        // lifecycle event, changes nothing).
        if (at < r.eventAt || !d.broadcastId || r.last?.broadcastId === d.broadcastId) return r;
        return { ...r, current: { nodeId: d.nodeId, startedAt: at, broadcastId: d.broadcastId, renditions: d.renditions.map(cleanRendition) } };
      }
      if (r.current.broadcastId && d.broadcastId && r.current.broadcastId !== d.broadcastId) return r;
      if (r.current.renditions.length > 0 && r.current.renditions.length <= d.renditions.length) return r;
      return { ...r, current: { ...r.current, renditions: d.renditions.map(cleanRendition) } };
    }
    case "stream.ended": {
      if (at < r.eventAt) return r;
      const d = event.data;
      if (r.current?.broadcastId && d.broadcastId && r.current.broadcastId !== d.broadcastId) return r;
      const ended = r.current ?? { nodeId: d.nodeId, startedAt: at - d.durationS * 1000, renditions: [] };
      const next: StreamRecord = { ...r, eventAt: at, last: { ...ended, endedAt: at, reason: d.reason } };
      delete next.current;
      return next;
    }
    case "media.ready": {
      const d = event.data;
      if (d.streamId !== r.id || r.recordings.some((x) => x.mediaId === d.mediaId)) return r;
      const rec: Recording = { mediaId: d.mediaId, durationS: d.durationS, readyAt: at };
      if (d.playlistKey) rec.playlistKey = d.playlistKey;
      // The media node names a recording after its broadcast.
      rec.broadcastId = d.mediaId;
      return { ...r, recordings: [rec, ...r.recordings].slice(0, MAX_RECORDINGS) };
    }
    default:
      return r;
  }
}

function cleanRendition(x: Rendition): Rendition {
  const out: Rendition = { name: x.name, bandwidth: x.bandwidth };
  if (x.width !== undefined) out.width = x.width;
  if (x.height !== undefined) out.height = x.height;
  if (x.codecs !== undefined) out.codecs = x.codecs;
  return out;
}

/** Events a stream object takes. */
export function isStreamEvent(e: Envelope): boolean {
  return e.type === "stream.started" || e.type === "stream.live" || e.type === "stream.ended" || e.type === "stream.degraded" || (e.type === "media.ready" && e.data.streamId !== undefined);
}

/** The stream an event reports on, if any. */
export function streamIdOfEvent(e: Envelope): string | undefined {
  switch (e.type) {
    case "stream.started":
    case "stream.live":
    case "stream.ended":
    case "stream.degraded":
      return e.data.streamId;
    case "media.ready":
      return e.data.streamId;
    default:
      return undefined;
  }
}
