// Where the parts of a big room live, decided without asking any of them (pure): which rooms are big, which
// shard a user lands on, which relay a shard links to, and what the objects are called.
//
// A user is placed by a hash of the user id, so all of a user's tabs meet on one shard (presence counts add
// up across shards, and a kick closes sockets on one shard). Connection ids carry their shard (`<shard>.<uuid>`),
// so a signal addressed to a connection goes to one shard, never to all.

/** Whether `roomId` is served as a big room: ROOM_SHARDED lists exact ids and prefixes ending in `*`. */
export function isBigRoom(roomId: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => (p.endsWith("*") ? roomId.startsWith(p.slice(0, -1)) : p === roomId));
}

/** FNV-1a (32 bit) of a string: stable across runtimes and deploys, and spreads similar ids apart. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The shard a user's connections go to first (0 .. shards-1). */
export function homeShard(userId: string, shards: number): number {
  return fnv1a(userId) % shards;
}

/** The shards to try, in order: the home shard, then the next ones round the ring (a full shard sends the client on). */
export function shardOrder(userId: string, shards: number): number[] {
  const home = homeShard(userId, shards);
  return Array.from({ length: shards }, (_, k) => (home + k) % shards);
}

// Room ids never contain `/`, so these names cannot collide with a room's or with each other.
export const shardName = (roomId: string, index: number) => `${roomId}/s${index}`;
export const relayName = (roomId: string, index: number) => `${roomId}/r${index}`;

/** Room id and index from a shard or relay name; null for anything else. */
export function parsePartName(name: string): { roomId: string; kind: "shard" | "relay"; index: number } | null {
  const m = /^(.+)\/([sr])(\d+)$/.exec(name);
  if (!m) return null;
  return { roomId: m[1]!, kind: m[2] === "s" ? "shard" : "relay", index: Number(m[3]) };
}

/**
 * Who a shard links up to: the coordinator itself while it can take every shard (shards ≤ fanout), else the
 * relay in charge of its group of `fanout` shards (the relays link to the coordinator).
 */
export function parentOf(index: number, shards: number, fanout: number): { kind: "coordinator" } | { kind: "relay"; index: number } {
  if (shards <= fanout) return { kind: "coordinator" };
  return { kind: "relay", index: Math.floor(index / fanout) };
}

/** Connection id for a socket on shard `index`: the shard is readable from the id. */
export const connectionIdFor = (index: number, uuid: string) => `${index}.${uuid}`;

/** The shard a connection id belongs to, or null when the id is not a big-room connection id. */
export function shardOfConnection(connectionId: string): number | null {
  const m = /^(\d{1,4})\.[0-9a-f-]{36}$/.exec(connectionId);
  return m ? Number(m[1]) : null;
}
