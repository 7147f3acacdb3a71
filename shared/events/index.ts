import type { z } from "zod";
import { chatMessage } from "./chat.ts";
import { nodeHeartbeat } from "./fleet.ts";
import { mediaFailed, mediaPlayable, mediaProgress, mediaReady, mediaUploaded } from "./media.ts";
import { notificationEmail, notificationRequested, notificationSent } from "./notification.ts";
import { presenceUpdate } from "./presence.ts";
import { streamDegraded, streamEnded, streamLive, streamStarted } from "./stream.ts";
import { transcriptionComplete } from "./transcription.ts";

/**
 * One data schema per event type. The type name is also the NATS subject the event is published on.
 * Adding an event type means adding it here; both the edge and the media side check against this map.
 */
export const eventSchemas = {
  "stream.started": streamStarted,
  "stream.live": streamLive,
  "stream.ended": streamEnded,
  "stream.degraded": streamDegraded,
  "media.uploaded": mediaUploaded,
  "media.progress": mediaProgress,
  "media.playable": mediaPlayable,
  "media.ready": mediaReady,
  "media.failed": mediaFailed,
  "notification.requested": notificationRequested,
  "notification.sent": notificationSent,
  "notification.email": notificationEmail,
  "chat.message": chatMessage,
  "presence.update": presenceUpdate,
  "transcription.complete": transcriptionComplete,
  "node.heartbeat": nodeHeartbeat,
} as const;

export type EventType = keyof typeof eventSchemas;
export type EventData<T extends EventType> = z.output<(typeof eventSchemas)[T]>;
export type EventDataInput<T extends EventType> = z.input<(typeof eventSchemas)[T]>;
export const eventTypes = Object.keys(eventSchemas) as EventType[];

export function isEventType(type: unknown): type is EventType {
  return typeof type === "string" && Object.hasOwn(eventSchemas, type);
}
