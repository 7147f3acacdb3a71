// One owner per live stream across the fleet: a lease in NATS KV (bucket STREAM_LEASES, key = stream id).
//
// - Taken on publish with `create` (fails while another node holds the key), renewed every TTL/4 with `update`
//   on the revision it last wrote (fails if anyone else wrote since), released with a delete on that revision.
// - The bucket's TTL is the lease's: a node that dies stops renewing, and the server removes its key within
//   MEDIA_LEASE_TTL_S. A node asked to publish a stream whose lease is held waits that long for it to expire; if
//   the holder renews meanwhile (it is alive), the publish is refused at once.
// - A node that finds its lease taken by another node (it was cut off longer than the TTL) has lost the stream
//   and must stop writing it: the `lost` event. A lease found merely expired (nobody took it) is taken again.
// - When NATS cannot be reached at publish time, the publish goes ahead without a lease rather than failing a
//   broadcaster for a bus outage: the lease is taken as soon as NATS answers (and if another node got there
//   first, this one loses the stream then). While KV is unreachable nobody else can take a lease either.
// - A node restarted under the same MEDIA_NODE_ID takes over its previous process's leases at once (that
//   process is gone: every lease records the process's boot id).
// - Faster than the TTL when the holder is plainly gone: if NATS says nobody answers for the holder (alive.ts: its
//   connection is gone) twice, GONE_CONFIRM_MS apart, while its lease shows no renewal, or another process of that
//   node answers, the lease is taken over at once (a delete on the revision seen, then a create). A holder only cut
//   off from NATS for a moment keeps its stream unless a publish for it reaches another node meanwhile; it then
//   learns at its next renewal that it lost it, as after an expiry.

import { EventEmitter } from "node:events";
import type { KV } from "nats";
import { z } from "zod";
import type { Logger } from "../log.ts";
import type { Aliveness } from "./alive.ts";
import { isRevisionConflict } from "./kv.ts";

export const leaseValue = z.object({
  nodeId: z.string().min(1).max(64),
  /** the holding process (a restart under the same node id is another process) */
  bootId: z.string().min(1).max(64),
  broadcastId: z.string().min(1).max(64).optional(),
  /** ms since the epoch of the write (for operators; expiry is the server's business) */
  at: z.number(),
});
export type LeaseValue = z.infer<typeof leaseValue>;

export interface LeaseOwner {
  nodeId: string;
  bootId: string;
}

export type AcquireResult = { ok: true; lease: Lease } | { ok: false; holder: string; detail: string };

const enc = new TextEncoder();
const dec = new TextDecoder();

function readValue(bytes: Uint8Array): LeaseValue | undefined {
  try {
    const parsed = leaseValue.safeParse(JSON.parse(dec.decode(bytes)));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export interface LeaseEvents {
  /** another node holds the stream now: stop writing it */
  lost: [{ holder: string }];
  /** the lease is held (again): after a publish that went ahead without one, or after an expiry */
  held: [{ revision: number }];
}

export class Lease extends EventEmitter<LeaseEvents> {
  readonly streamId: string;
  #revision: number | undefined;
  #value: LeaseValue;
  #timer: NodeJS.Timeout | undefined;
  #released = false;
  #lost = false;
  #renewing = false;
  #failures = 0;
  readonly #kv: () => Promise<KV>;
  readonly #owner: LeaseOwner;
  readonly #log: Logger;

  constructor(init: { streamId: string; revision: number | undefined; value: LeaseValue; kv: () => Promise<KV>; owner: LeaseOwner; renewMs: number; log: Logger }) {
    super();
    this.streamId = init.streamId;
    this.#revision = init.revision;
    this.#value = init.value;
    this.#kv = init.kv;
    this.#owner = init.owner;
    this.#log = init.log;
    this.#timer = setInterval(() => void this.renew(), init.renewMs);
    this.#timer.unref();
  }

  /** KV revision of our last write; undefined while the lease is not held yet (NATS was away at publish). */
  get revision(): number | undefined {
    return this.#revision;
  }

  get held(): boolean {
    return this.#revision !== undefined && !this.#lost && !this.#released;
  }

  get lost(): boolean {
    return this.#lost;
  }

  /** Names the broadcast in the lease (for operators); written with the next renewal. */
  setBroadcast(broadcastId: string): void {
    this.#value = { ...this.#value, broadcastId };
  }

  /** One renewal (also run by the timer). Never throws. */
  async renew(): Promise<void> {
    if (this.#released || this.#lost || this.#renewing) return;
    this.#renewing = true;
    try {
      const kv = await this.#kv();
      const value = enc.encode(JSON.stringify({ ...this.#value, at: Date.now() }));
      try {
        this.#revision = this.#revision === undefined ? await kv.create(this.streamId, value) : await kv.update(this.streamId, value, this.#revision);
        if (this.#failures > 0) this.#log.info("stream lease renewed again", { streamId: this.streamId, failures: this.#failures });
        this.#failures = 0;
        return;
      } catch (error) {
        if (!isRevisionConflict(error)) throw error;
      }
      // Someone wrote the key since our last write, or it expired and is gone: who holds it now?
      const entry = await kv.get(this.streamId);
      const holder = entry && entry.operation === "PUT" ? readValue(entry.value) : undefined;
      if (!entry || entry.operation !== "PUT") {
        // Expired (or deleted) and nobody took it: take it again.
        this.#revision = await kv.create(this.streamId, value);
        this.#log.warn("stream lease had expired (renewals did not get through in time); taken again", { streamId: this.streamId });
        this.emit("held", { revision: this.#revision });
        return;
      }
      if (holder && holder.nodeId === this.#owner.nodeId && holder.bootId === this.#owner.bootId) {
        // This process took the lease again for a newer session of the stream (a broadcaster back while the old
        // session was still ending): that session's lease is the one that counts; this one bows out quietly.
        this.#released = true;
        clearInterval(this.#timer);
        return;
      }
      this.#lost = true;
      clearInterval(this.#timer);
      this.#log.error("stream lease taken by another node; this node stops writing the stream", { streamId: this.streamId, holder: holder?.nodeId ?? "unknown" });
      this.emit("lost", { holder: holder?.nodeId ?? "unknown" });
    } catch (error) {
      // NATS away or slow (a cluster electing a leader): keep trying. Nobody can take the key while KV is away.
      if (this.#failures++ === 0) this.#log.warn("stream lease not renewed; retrying", { streamId: this.streamId, error: (error as Error).message });
    } finally {
      this.#renewing = false;
    }
  }

  /** Stops renewing and frees the stream for any node at once (only if the key is still ours). Never throws. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    clearInterval(this.#timer);
    if (this.#lost || this.#revision === undefined) return;
    try {
      const kv = await this.#kv();
      await kv.delete(this.streamId, { previousSeq: this.#revision });
    } catch (error) {
      // Not ours anymore, or NATS away: the TTL frees it.
      this.#log.warn("stream lease not released; it expires by itself", { streamId: this.streamId, error: (error as Error).message });
    }
  }
}

/** A holder found absent is asked again after this long before its lease is taken over. */
const GONE_CONFIRM_MS = 300;

export interface StreamLeasesOptions {
  owner: LeaseOwner;
  /** the bucket, once NATS is up */
  kv: () => Promise<KV>;
  ttlMs: number;
  log: Logger;
  /** how long one KV call may take before NATS counts as unreachable */
  callTimeoutMs?: number;
  /** is a node there? (alive.ts) Without it, only the TTL frees a dead holder's leases. */
  alive?: (nodeId: string) => Promise<Aliveness>;
}

/** Time-bounded KV call: a bus that does not answer counts as away. */
function bounded<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer from NATS within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

export class StreamLeases {
  readonly #o: StreamLeasesOptions;
  readonly renewMs: number;

  constructor(opts: StreamLeasesOptions) {
    this.#o = opts;
    this.renewMs = Math.max(100, Math.floor(opts.ttlMs / 4));
  }

  get ttlMs(): number {
    return this.#o.ttlMs;
  }

  #lease(streamId: string, revision: number | undefined, value: LeaseValue): Lease {
    return new Lease({ streamId, revision, value, kv: this.#o.kv, owner: this.#o.owner, renewMs: this.renewMs, log: this.#o.log });
  }

  /** Who holds `streamId` now (undefined: nobody). Throws when NATS cannot be asked. */
  async holder(streamId: string): Promise<LeaseValue | undefined> {
    const kv = await bounded(this.#o.kv(), this.#o.callTimeoutMs ?? 2000);
    const entry = await bounded(kv.get(streamId), this.#o.callTimeoutMs ?? 2000);
    return entry && entry.operation === "PUT" ? readValue(entry.value) : undefined;
  }

  /**
   * Takes the lease of `streamId`. While another live node holds it: refused as soon as that node renews, or
   * after `waitMs` (default: the TTL plus a renewal) if it never lets go. A holder that stops renewing (dead)
   * loses it to us when the server expires its key. NATS unreachable: a lease taken later (see the header).
   */
  async acquire(streamId: string, opts: { broadcastId?: string; waitMs?: number; signal?: AbortSignal } = {}): Promise<AcquireResult> {
    const { owner, log } = this.#o;
    const value: LeaseValue = { nodeId: owner.nodeId, bootId: owner.bootId, ...(opts.broadcastId ? { broadcastId: opts.broadcastId } : {}), at: Date.now() };
    const bytes = () => enc.encode(JSON.stringify({ ...value, at: Date.now() }));
    const timeout = this.#o.callTimeoutMs ?? 2000;
    const deadline = Date.now() + (opts.waitMs ?? this.#o.ttlMs + this.renewMs + 500);
    let seenRevision: number | undefined;
    /** when the holder was first found absent (no answer for it on NATS), while its lease stayed unrenewed */
    let gone: number | undefined;
    for (;;) {
      if (opts.signal?.aborted) return { ok: false, holder: "unknown", detail: "the publisher left while the lease was awaited" };
      let kv: KV;
      try {
        kv = await bounded(this.#o.kv(), timeout);
      } catch (error) {
        log.warn("NATS unreachable: publishing without a stream lease for now (taken as soon as NATS answers)", { streamId, error: (error as Error).message });
        return { ok: true, lease: this.#lease(streamId, undefined, value) };
      }
      try {
        const revision = await bounded(kv.create(streamId, bytes()), timeout);
        return { ok: true, lease: this.#lease(streamId, revision, value) };
      } catch (error) {
        if (!isRevisionConflict(error)) {
          log.warn("NATS unreachable: publishing without a stream lease for now (taken as soon as NATS answers)", { streamId, error: (error as Error).message });
          return { ok: true, lease: this.#lease(streamId, undefined, value) };
        }
      }
      let entry;
      try {
        entry = await bounded(kv.get(streamId), timeout);
      } catch (error) {
        log.warn("NATS unreachable: publishing without a stream lease for now (taken as soon as NATS answers)", { streamId, error: (error as Error).message });
        return { ok: true, lease: this.#lease(streamId, undefined, value) };
      }
      if (!entry || entry.operation !== "PUT") continue; // gone between the two calls: create again
      const held = readValue(entry.value);
      // Our own node id: this process (a leftover of a publish it gave up), or an earlier process of this node,
      // which is gone. Either way the lease is ours to take over now.
      if (!held || held.nodeId === owner.nodeId) {
        try {
          const revision = await bounded(kv.update(streamId, bytes(), entry.revision), timeout);
          if (held && held.bootId !== owner.bootId) log.info("stream lease of this node's previous process taken over", { streamId });
          return { ok: true, lease: this.#lease(streamId, revision, value) };
        } catch (error) {
          if (!isRevisionConflict(error)) throw error;
          continue;
        }
      }
      if (seenRevision !== undefined && entry.revision !== seenRevision) {
        return { ok: false, holder: held.nodeId, detail: `stream ${streamId} is live on node ${held.nodeId}` };
      }
      seenRevision ??= entry.revision;
      // Is its holder there at all? Asked twice, GONE_CONFIRM_MS apart (a holder reconnecting to another NATS server
      // is briefly unreachable too), and only while its lease shows no renewal.
      if (this.#o.alive && (gone === undefined || Date.now() - gone >= GONE_CONFIRM_MS)) {
        const holder = await this.#o.alive(held.nodeId);
        const absent = holder.state === "gone" || (holder.state === "alive" && holder.bootId !== held.bootId);
        if (absent && gone === undefined) gone = Date.now();
        else if (!absent) gone = undefined;
        if (absent && Date.now() - gone! >= GONE_CONFIRM_MS) {
          try {
            await bounded(kv.delete(streamId, { previousSeq: entry.revision }), timeout);
            log.info("stream lease of a node that is gone taken over without waiting for it to expire", { streamId, holder: held.nodeId, why: holder.state === "gone" ? "nobody answers for it on NATS" : "it restarted" });
          } catch (error) {
            if (!isRevisionConflict(error)) throw error;
          }
          continue; // create again (or find who was faster)
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) return { ok: false, holder: held.nodeId, detail: `stream ${streamId} is held by node ${held.nodeId}` };
      await new Promise((r) => setTimeout(r, Math.min(200, left)));
    }
  }
}
