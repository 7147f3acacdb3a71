// How Rooms, Inboxes and VideoLibraries build the outbox they carry, and how the front Worker reaches one (operator routes).
import type { Env } from "../env.ts";
import { isBigRoom } from "../bigrooms/placement.ts";
import { type EdgeSettings, edgeSettings } from "../settings.ts";
import { Outbox, type OutboxView } from "./outbox.ts";

/** An outbox in `storage` with the edge's retry, batch and bound settings; `gatherMs` delays delivery of new events so they batch. */
export function carriedOutbox(storage: DurableObjectStorage, settings: EdgeSettings, gatherMs: number, label: () => string): Outbox {
  return new Outbox(storage, {
    retryBaseMs: settings.outboxRetryBaseMs,
    retryMaxMs: settings.outboxRetryMaxMs,
    deliveryTimeoutMs: settings.outboxDeliveryTimeoutMs,
    batchMax: settings.outboxBatchMax,
    maxPending: settings.outboxMaxPending,
    gatherMs,
    target: () => ({ url: settings.bridgeUrl, secrets: settings.bridgeIngressSecret ?? [], timeoutMs: settings.outboxDeliveryTimeoutMs }),
    label,
  });
}

/** Outbox names in operator URLs: `room/<roomId>` (or a bare room id), `user/<userId>` and `videos/<userId>`. */
export const roomShard = (roomId: string) => `room/${roomId}`;
export const userShard = (userId: string) => `user/${userId}`;
export const videosShard = (userId: string) => `videos/${userId}`;

/** The object that carries the outbox named `shard`, or null for a name that is none of a room's, inbox's or video library's. */
export function outboxCarrier(env: Env, shard: string): OutboxView | null {
  if (shard.startsWith("user/")) return shard.length > 5 ? env.Inbox.getByName(shard.slice(5)) : null;
  // A user's video library announces that user's finished uploads (media.uploaded).
  if (shard.startsWith("videos/")) return shard.length > 7 ? env.VideoLibrary.getByName(shard.slice(7)) : null;
  const roomId = shard.startsWith("room/") ? shard.slice(5) : shard;
  if (!roomId) return null;
  // A big room's chat events are written by its coordinator (bigrooms/coordinator.ts), which carries its outbox.
  return isBigRoom(roomId, edgeSettings(env).roomSharded) ? env.RoomCoordinator.getByName(roomId) : env.Room.getByName(roomId);
}
