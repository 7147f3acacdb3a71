// Broadcasts that have not ended, in NATS KV (bucket LIVE_BROADCASTS, key = stream id): what a node needs to
// continue a broadcast whose node died, or to end it properly when its broadcaster never comes back.
//
// Written once by the node that starts a broadcast (and again by a node that continues one), deleted when the
// broadcast ends. What was stored so far is not here but in storage, next to the segments: the variant playlists
// and their journal pages (hls/journal.ts), which the continuing node reads back.

import type { KV } from "nats";
import { z } from "zod";
import { STREAM_ID_PATTERN } from "../../../shared/names.ts";

export const broadcastState = z.object({
  v: z.literal(1),
  streamId: z.string().regex(STREAM_ID_PATTERN),
  broadcastId: z.string().min(1).max(64),
  /** every object of the broadcast lives under `<keyBase>/` */
  keyBase: z.string().min(1).max(512),
  /** the stable per-stream master pointing at the current broadcast */
  aliasKey: z.string().min(1).max(512),
  app: z.string().min(1).max(64),
  /** the node that wrote this (the broadcast's owner at the time) */
  nodeId: z.string().min(1).max(64),
  startedAt: z.number(),
  record: z.boolean(),
  roomId: z.string().max(128).optional(),
  ownerId: z.string().max(128).optional(),
  segmentS: z.number().positive(),
  liveWindow: z.number().int().positive(),
  /** segments per journal page */
  journalPage: z.number().int().positive(),
  /** the variants (video rungs and the audio rendition) the broadcast publishes */
  variants: z.array(z.string().min(1).max(32)).min(1).max(16),
});
export type BroadcastState = z.infer<typeof broadcastState>;

const enc = new TextEncoder();
const dec = new TextDecoder();

export class BroadcastRegistry {
  readonly #kv: () => Promise<KV>;

  constructor(kv: () => Promise<KV>) {
    this.#kv = kv;
  }

  /** The unfinished broadcast of `streamId`, or undefined. A value that is not a valid state counts as none. */
  async get(streamId: string): Promise<BroadcastState | undefined> {
    const entry = await (await this.#kv()).get(streamId);
    if (!entry || entry.operation !== "PUT") return undefined;
    try {
      const parsed = broadcastState.safeParse(JSON.parse(dec.decode(entry.value)));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  async put(state: BroadcastState): Promise<void> {
    await (await this.#kv()).put(state.streamId, enc.encode(JSON.stringify(broadcastState.parse(state))));
  }

  /** Forgets the broadcast, unless the key now names another one (a newer broadcast of the stream). */
  async delete(streamId: string, broadcastId: string): Promise<void> {
    const kv = await this.#kv();
    const entry = await kv.get(streamId);
    if (!entry || entry.operation !== "PUT") return;
    const current = (() => {
      try {
        return broadcastState.safeParse(JSON.parse(dec.decode(entry.value)));
      } catch {
        return undefined;
      }
    })();
    if (current?.success && current.data.broadcastId !== broadcastId) return;
    await kv.delete(streamId, { previousSeq: entry.revision });
  }

  /** Stream ids with an unfinished broadcast. */
  async streams(): Promise<string[]> {
    const kv = await this.#kv();
    const out: string[] = [];
    for await (const k of await kv.keys()) out.push(k);
    return out;
  }
}
