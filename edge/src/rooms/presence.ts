// Presence: who is in the room, on how many connections, with what small state.
//
// The truth is the set of open connections: each carries its user and that user's presence state in its
// hibernation attachment (ConnState). The in-memory map here is a cache of it, rebuilt from the connections
// after a wake, so presence survives hibernation and eviction without a storage write per change.
import { utf8ByteLength } from "../../../shared/encoding.ts";
import type { PresenceEntry } from "../../../shared/protocol/room.ts";
import type { Role, VerifiedUser } from "../auth/claims.ts";
import type { CallState } from "./call.ts";

/** What each connection keeps in its attachment (conn.setState): small, well under the 16 KiB limit. */
export interface ConnState {
  user: { userId: string; role: Role; name?: string; avatar?: string };
  /** the user's presence state (the same on all the user's connections) */
  state: Record<string, unknown>;
  /** ms when `state` was set: after a wake, the newest copy wins */
  stateAt: number;
  /** moderates this room without the `moderator` role: the owner of the room's API stream */
  moderates?: boolean;
  /** set while this connection is a peer of the room's call (call.ts) */
  call?: CallState;
}

export function connStateFor(user: VerifiedUser, state: Record<string, unknown>, stateAt: number): ConnState {
  const u: ConnState["user"] = { userId: user.userId, role: user.role };
  if (user.name !== undefined) u.name = user.name;
  if (user.avatar !== undefined) u.avatar = user.avatar;
  return { user: u, state, stateAt };
}

/** Tag every connection carries, so a user's connections can be found without scanning the room. */
export const userTag = (userId: string) => `u:${userId}`;

export function entryFor(cs: ConnState, connections: number): PresenceEntry {
  const e: PresenceEntry = { userId: cs.user.userId, role: cs.user.role, connections, state: cs.state };
  if (cs.user.name !== undefined) e.name = cs.user.name;
  if (cs.user.avatar !== undefined) e.avatar = cs.user.avatar;
  return e;
}

/** Pure: the presence list of a set of connection states (one entry per user, with a connection count). */
export function presenceFromStates(states: Iterable<ConnState>): Map<string, { entry: PresenceEntry; stateAt: number }> {
  const out = new Map<string, { entry: PresenceEntry; stateAt: number }>();
  for (const cs of states) {
    const seen = out.get(cs.user.userId);
    if (!seen) {
      out.set(cs.user.userId, { entry: entryFor(cs, 1), stateAt: cs.stateAt });
      continue;
    }
    seen.entry.connections += 1;
    if (cs.stateAt > seen.stateAt) {
      seen.entry.state = cs.state;
      seen.stateAt = cs.stateAt;
    }
  }
  return out;
}

/** JSON size of a presence state in bytes (what the limit is about). */
export function stateBytes(state: Record<string, unknown>): number {
  return utf8ByteLength(JSON.stringify(state));
}
