// Test support for the ingress tests inside workerd (not a test file): where "applied" is checked (the target
// object's AppliedLedger) and the bus counters.
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import type { StatsSnapshot } from "../src/ingress/stats.ts";

export const INTERNAL = { authorization: `Bearer ${env.INTERNAL_API_TOKEN}` };

/** Whether the room or inbox recorded `eventId` as applied: the truth, rather than any counter. */
export async function appliedIn(ns: "Room" | "Inbox", name: string, eventId: string): Promise<boolean> {
  const stub = ns === "Room" ? env.Room.getByName(name) : env.Inbox.getByName(name);
  return runInDurableObject(stub, (_instance, state) => {
    const tables = state.storage.sql.exec("SELECT name FROM sqlite_master WHERE name = 'applied_events'").toArray();
    if (tables.length === 0) return false;
    return state.storage.sql.exec("SELECT 1 FROM applied_events WHERE id = ?", eventId).toArray().length > 0;
  });
}

/** What GET /internal/bus/stats answers. */
export type BusStats = StatsSnapshot;

/** GET /internal/bus/stats, unparsed, so a caller can check the status too. */
export function fetchBusStats(): Promise<Response> {
  return exports.default.fetch("http://edge/internal/bus/stats", { headers: INTERNAL });
}
