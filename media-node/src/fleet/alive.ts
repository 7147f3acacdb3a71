// "Is node X still there?" on plain NATS: each media node answers on `fleet.alive.<nodeId>` with its boot id.
// NATS says "no responders" at once when nobody subscribes there, which is the case when the node's connection is
// gone (the process died, its host fell off the network): a node finding a stream's lease held by such a node
// takes the stream without waiting for the lease to expire (leases.ts).

import { ErrorCode, type NatsConnection, NatsError, type Subscription } from "nats";
import { ALIVE_SUBJECT_PREFIX } from "../bus/nats-permissions.ts";

export type Aliveness = { state: "gone" } | { state: "alive"; bootId: string } | { state: "unknown" };

/** Answers for this node (the subscription comes back by itself after a reconnect). */
export function answerAlive(nc: NatsConnection, nodeId: string, bootId: string): Subscription {
  const reply = new TextEncoder().encode(JSON.stringify({ nodeId, bootId }));
  return nc.subscribe(`${ALIVE_SUBJECT_PREFIX}.${nodeId}`, { callback: (_err, m) => void m.respond(reply) });
}

/** Asks whether `nodeId` is there: `gone` only when NATS says nobody listens for it. */
export async function askAlive(nc: NatsConnection, nodeId: string, timeoutMs = 500): Promise<Aliveness> {
  try {
    const m = await nc.request(`${ALIVE_SUBJECT_PREFIX}.${nodeId}`, undefined, { timeout: timeoutMs });
    const body = JSON.parse(new TextDecoder().decode(m.data)) as { bootId?: unknown };
    return typeof body.bootId === "string" ? { state: "alive", bootId: body.bootId } : { state: "unknown" };
  } catch (error) {
    if (error instanceof NatsError && error.code === ErrorCode.NoResponders) return { state: "gone" };
    return { state: "unknown" };
  }
}
