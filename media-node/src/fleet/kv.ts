// The two NATS KV buckets that make several media nodes one fleet:
// - STREAM_LEASES: one key per live stream, held by the node that carries it (leases.ts). The bucket's TTL is the
//   lease's: a node that stops renewing (killed, cut off) loses its streams within MEDIA_LEASE_TTL_S.
// - LIVE_BROADCASTS: one key per broadcast that has not ended, holding what another node needs to continue it
//   (broadcasts.ts). No TTL: a broadcast whose node died stays until another node continues or ends it.
// Both are declared by every node at start, idempotently (any number of nodes at once), with NATS_REPLICAS copies.

import { type KV, type KvOptions, type NatsConnection, NatsError } from "nats";

export const LEASE_BUCKET = "STREAM_LEASES";
export const BROADCAST_BUCKET = "LIVE_BROADCASTS";

/** LIVE_BROADCASTS entries of broadcasts nobody ended (and nobody came back for) are dropped after a week. */
const BROADCAST_MAX_AGE_MS = 7 * 86_400_000;

/** JetStream API errors that mean "another node declared it at the same moment": bind to what it made. */
const STREAM_NAME_IN_USE = 10058;

async function openBucket(nc: NatsConnection, name: string, opts: Partial<KvOptions>): Promise<KV> {
  const js = nc.jetstream();
  try {
    return await js.views.kv(name, opts);
  } catch (error) {
    if (error instanceof NatsError && error.api_error?.err_code === STREAM_NAME_IN_USE) return js.views.kv(name, { ...opts, bindOnly: true });
    throw error;
  }
}

export interface FleetBuckets {
  leases: KV;
  broadcasts: KV;
}

export async function openFleetBuckets(nc: NatsConnection, opts: { leaseTtlMs: number; replicas: number; timeoutMs: number }): Promise<FleetBuckets> {
  const [leases, broadcasts] = await Promise.all([
    openBucket(nc, LEASE_BUCKET, { history: 1, ttl: opts.leaseTtlMs, replicas: opts.replicas, timeout: opts.timeoutMs }),
    openBucket(nc, BROADCAST_BUCKET, { history: 1, ttl: BROADCAST_MAX_AGE_MS, replicas: opts.replicas, timeout: opts.timeoutMs }),
  ]);
  return { leases, broadcasts };
}

/** KV write refused because the key moved on (a revision check failed, or `create` found a live key). */
export function isRevisionConflict(error: unknown): boolean {
  if (!(error instanceof NatsError)) return false;
  // 10071: wrong last sequence (update/create with a stale revision)
  return error.api_error?.err_code === 10071 || /wrong last sequence/i.test(error.message);
}
