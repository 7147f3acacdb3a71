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
  const random = crypto.getRandomValues(new Uint8Array(16));
  let rand = "";
  for (let i = 0; i < 16; i++) rand += CROCKFORD[random[i]! % 32];
  return time + rand;
}

/** Event ids: `evt_<ulid>`. */
export function newEventId(): string {
  return `evt_${ulid()}`;
}

/** Ids with a readable prefix for other entities (`str_…`, `med_…`, `ntf_…`). */
export function newId(prefix: string): string {
  return `${prefix}_${ulid()}`;
}
