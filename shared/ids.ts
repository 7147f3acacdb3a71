// Identifiers. Event ids are ULIDs: unique, and sortable by creation time, which keeps
// dedup tables and outboxes naturally ordered.

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** A ULID (26 chars, Crockford base32): 48-bit millisecond time + 80 random bits. */
export function ulid(now: number = Date.now()): string {
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  let rand = "";
  for (let i = 0; i < 16; i++) rand += CROCKFORD[randomByte() % 32];
  return time + rand;
}

// Random bytes are drawn a pool at a time: one getRandomValues call per id was a visible share of a busy
// publisher's CPU (every event gets an id). 256 is a multiple of 32, so `% 32` stays uniform.
const pool = new Uint8Array(4096);
let poolAt = pool.length;
function randomByte(): number {
  if (poolAt === pool.length) {
    crypto.getRandomValues(pool);
    poolAt = 0;
  }
  return pool[poolAt++]!;
}

/** Event ids: `evt_<ulid>`. */
export function newEventId(): string {
  return `evt_${ulid()}`;
}

/** Ids with a readable prefix for other entities (`str_…`, `med_…`, `ntf_…`). */
export function newId(prefix: string): string {
  return `${prefix}_${ulid()}`;
}
