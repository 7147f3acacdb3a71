// Where verified events from the media side take effect, and applying them there exactly once.
//
// Exactly-once is the target objects' job: each one records the event id in its AppliedLedger in the same
// transaction as the effect. A batch is grouped by target object and each object gets ONE call with all of its
// events (applied in one transaction: one commit instead of one per event), all objects in parallel. An event
// with several targets (a media.ready for the owner's inbox and the room) is applied at each; if one of them
// fails, that event's result is `failed`, the bridge retries just that event, the targets that already applied
// it answer "duplicate" and only the missing one applies it. The ingress itself keeps no ledger: a second one
// could only disagree with the objects' (and would cost a round trip per event).

import type { EventResult } from "../../../shared/batch.ts";
import type { Envelope } from "../../../shared/envelope.ts";
import { errorText, type EventApplyOutcome } from "../ledger/applied-ledger.ts";
import type { Outcome } from "./stats.ts";

/** What Room.applyEvents and Inbox.applyEvents promise (DO RPC; dedup by event id inside the object). */
export interface RoomTarget {
  applyEvents(events: Envelope[]): Promise<EventApplyOutcome[]>;
}
/** What Stream.applyEvents promises (a stream's own object; dedup by event id inside it). */
export interface StreamTarget {
  applyEvents(events: Envelope[]): Promise<EventApplyOutcome[]>;
}
export interface InboxTarget {
  applyEvents(events: Envelope[]): Promise<(EventApplyOutcome & { connections: number })[]>;
}
/** What VideoLibrary.applyEvents promises: a user's video records, updated once per event id. */
export interface VideosTarget {
  applyEvents(events: Envelope[]): Promise<EventApplyOutcome[]>;
}

/** What Fleet.applyHeartbeats promises: the latest heartbeat per node kept, older ones answered as duplicates. */
export interface FleetTarget {
  applyHeartbeats(events: Envelope[]): Promise<EventApplyOutcome[]>;
}

/** The objects an event can reach. Injected so routing is testable. */
export interface EventTargets {
  room(roomId: string): RoomTarget;
  inbox(userId: string): InboxTarget;
  /** the stream's own object (Streams API); events of streams it does not hold are acknowledged there */
  stream(streamId: string): StreamTarget;
  /** the owner's video library (videos/library.ts); absent where no videos are kept (tests of other parts) */
  videos?(userId: string): VideosTarget;
  /** the media fleet's view (node heartbeats); absent where no fleet is kept (tests of other parts) */
  fleet?(): FleetTarget;
}

export type Route =
  | { kind: "objects"; rooms: string[]; inboxes: string[]; streams?: string[]; videos?: string[] }
  | { kind: "notification"; userId: string }
  | { kind: "fleet" }
  | { kind: "ignored"; reason: string };

/**
 * Streams created through the Streams API have `str_` ids and an object of their own that follows their
 * status; streams published with a command-line token have neither, and only their room hears of them.
 */
export function isApiStreamId(streamId: string | undefined): streamId is string {
  return streamId !== undefined && streamId.startsWith("str_");
}

/**
 * Pure routing table. Valid events the edge has no use for are acknowledged as ignored (2xx) rather than
 * refused: the bridge forwards every subject of the stream, including ones that started at the edge
 * (chat.message, presence.update, media.uploaded), and a 4xx would fill its dead-letter subject with them.
 */
export function routeFor(event: Envelope): Route {
  switch (event.type) {
    case "stream.started":
    case "stream.live":
    case "stream.ended":
    case "stream.degraded":
      // A stream's viewers are in the room named in the event, or else the room named after the stream.
      return { kind: "objects", rooms: [event.data.roomId ?? event.data.streamId], inboxes: [], ...(isApiStreamId(event.data.streamId) ? { streams: [event.data.streamId] } : {}) };
    case "media.progress":
    case "media.ready":
    case "media.failed": {
      const room = event.data.roomId ?? (event.type === "media.ready" ? event.data.streamId : undefined);
      const rooms = room ? [room] : [];
      const inboxes = event.data.ownerId ? [event.data.ownerId] : [];
      if (rooms.length === 0 && inboxes.length === 0) return { kind: "ignored", reason: `${event.type} names neither an owner nor a room` };
      // The stream's object keeps its recordings; the owner's video library follows the same events (an
      // upload's status, or a live recording appearing as a video): a recording's media.ready reaches both.
      const streams = event.type === "media.ready" && isApiStreamId(event.data.streamId) ? [event.data.streamId] : [];
      return { kind: "objects", rooms, inboxes, ...(streams.length ? { streams } : {}), videos: inboxes };
    }
    case "media.playable":
      // The owner's video record (status playable); the inbox hears progress and the final ready/failed.
      if (!event.data.ownerId) return { kind: "ignored", reason: "media.playable names no owner" };
      return { kind: "objects", rooms: [], inboxes: [], videos: [event.data.ownerId] };
    case "notification.requested":
      return { kind: "notification", userId: event.data.userId };
    case "media.uploaded":
      return { kind: "ignored", reason: "media.uploaded starts at the edge; the edge does not take it back" };
    case "chat.message":
    case "presence.update":
      return { kind: "ignored", reason: `${event.type} starts at the edge; the edge does not take it back` };
    case "notification.sent":
      return { kind: "ignored", reason: "notification.sent is produced by the edge and the email notifier" };
    case "notification.email":
      return { kind: "ignored", reason: "notification.email starts at the edge; the email notifier takes it" };
    case "transcription.complete":
      return { kind: "ignored", reason: "transcription.complete has no edge consumer yet" };
    case "node.heartbeat":
      return { kind: "fleet" };
  }
}

export type DispatchResult = { outcome: Outcome; reason?: string };

/** Applies one checked event at its targets. Resolves only once every effect is durably stored; throws otherwise. */
export async function dispatchEvent(event: Envelope, targets: EventTargets): Promise<DispatchResult> {
  const [result] = await dispatchBatch([event], targets);
  if (!result || result.status === "failed") {
    throw new Error(result?.message ?? `event ${event.id}: no result`);
  }
  return result.status === "ignored" ? { outcome: "ignored", reason: result.message ?? "" } : { outcome: result.status };
}

/** The results dispatchBatch gives: what happened to each event (never `rejected`: those never get here). */
export type DispatchedResult = EventResult & { status: Outcome | "failed" };

/**
 * Applies checked events at their targets: one call per target object, all in parallel, every call settled
 * before answering. Returns one result per event in input order; `applied` / `duplicate` / `ignored` are
 * durably done, `failed` means at least one of the event's targets did
 * not take it, and a retry of that event completes it without repeating what did happen. A notification's answer
 * (notification.sent) is written by the inbox in the same transaction as the notification.
 */
export async function dispatchBatch(events: readonly Envelope[], targets: EventTargets): Promise<DispatchedResult[]> {
  const state = events.map(() => ({ applied: false, failure: null as string | null, ignored: null as string | null }));
  const rooms = new Map<string, number[]>();
  const inboxes = new Map<string, number[]>();
  const streams = new Map<string, number[]>();
  const videos = new Map<string, number[]>();
  const fleet: number[] = [];
  const add = (groups: Map<string, number[]>, key: string, index: number) => {
    const list = groups.get(key);
    if (list) list.push(index);
    else groups.set(key, [index]);
  };
  events.forEach((event, i) => {
    const route = routeFor(event);
    if (route.kind === "ignored") state[i]!.ignored = route.reason;
    else if (route.kind === "notification") add(inboxes, route.userId, i);
    else if (route.kind === "fleet") {
      if (targets.fleet) fleet.push(i);
      else state[i]!.ignored = "no fleet view here";
    }
    else {
      for (const userId of route.inboxes) add(inboxes, userId, i);
      for (const roomId of route.rooms) add(rooms, roomId, i);
      for (const streamId of route.streams ?? []) add(streams, streamId, i);
      if (targets.videos) for (const userId of route.videos ?? []) add(videos, userId, i);
    }
  });

  const fail = (i: number, why: string) => (state[i]!.failure ??= why);
  const call = async (what: string, indexes: number[], apply: (events: Envelope[]) => Promise<EventApplyOutcome[]>) => {
    try {
      const outcomes = await apply(indexes.map((i) => events[i]!));
      if (outcomes.length !== indexes.length) throw new Error(`answered ${outcomes.length} outcomes for ${indexes.length} events`);
      outcomes.forEach((outcome, j) => {
        const s = state[indexes[j]!]!;
        if ("error" in outcome) fail(indexes[j]!, `${what}: ${outcome.error}`);
        else if (outcome.applied) s.applied = true;
      });
    } catch (error) {
      console.error(`ingress: ${indexes.length} event(s) not applied at ${what}:`, error);
      for (const i of indexes) fail(i, `${what}: ${errorText(error)}`);
    }
  };
  await Promise.all([
    ...[...inboxes].map(([userId, indexes]) => call(`inbox ${userId}`, indexes, (batch) => targets.inbox(userId).applyEvents(batch))),
    ...[...rooms].map(([roomId, indexes]) => call(`room ${roomId}`, indexes, (batch) => targets.room(roomId).applyEvents(batch))),
    ...[...streams].map(([streamId, indexes]) => call(`stream ${streamId}`, indexes, (batch) => targets.stream(streamId).applyEvents(batch))),
    ...[...videos].map(([userId, indexes]) => call(`videos ${userId}`, indexes, (batch) => targets.videos!(userId).applyEvents(batch))),
    ...(fleet.length > 0 ? [call("fleet", fleet, (batch) => targets.fleet!().applyHeartbeats(batch))] : []),
  ]);

  return events.map((event, i): DispatchedResult => {
    const s = state[i]!;
    if (s.ignored !== null) return { id: event.id, status: "ignored", code: "no_edge_consumer", message: s.ignored };
    if (s.failure !== null) return { id: event.id, status: "failed", code: "apply_failed", message: `not applied (retry later): ${s.failure}` };
    return { id: event.id, status: s.applied ? "applied" : "duplicate" };
  });
}
