// Relay objects between viewers and a stream's low-latency object, for audiences one object cannot serve alone
// (an object takes about a thousand requests a second; at three parts a second, a viewer makes three blocking
// playlist requests a second per rendition it plays). With LLHLS_RELAYS = N > 0 the front Worker sends each
// viewer's playlist requests to one of N relays per stream (chosen by a hash of the viewer's address, so a
// viewer keeps its relay), and each relay does what a CDN does for LL-HLS (RFC 8216bis B.1: hold duplicate
// blocking requests until the pending fill completes):
//
// - requests for the same playlist with the same directives wait on ONE request to the stream's object, and all
//   get its answer: the object sees at most N requests per part and rendition, whatever the audience;
// - an answer to a request with directives is kept for one target duration (any playlist that lists the part
//   asked for is a right answer to it), an answer without directives for 100 ms.
//
// Clients see nothing of this: same URLs, same answers. The origin's own rules (hold, 400, 503) apply unchanged,
// since the relay only forwards what the origin said.
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env.ts";
import type { PlaylistAnswer, PlaylistRequest } from "./stream-object.ts";

export interface RelayStats {
  requests: number;
  /** requests that went on to the stream's object */
  originRequests: number;
}

export class LowLatencyRelay extends DurableObject<Env> {
  readonly #inflight = new Map<string, Promise<PlaylistAnswer>>();
  readonly #kept = new Map<string, { answer: PlaylistAnswer; until: number }>();
  readonly #stats: RelayStats = { requests: 0, originRequests: 0 };

  async playlist(streamId: string, req: PlaylistRequest, opts: { gzip: boolean }): Promise<PlaylistAnswer> {
    this.#stats.requests++;
    const key = JSON.stringify([req.broadcastId, req.rendition, req.directives.msn ?? null, req.directives.part ?? null, opts.gzip]);
    const now = Date.now();
    const kept = this.#kept.get(key);
    if (kept && kept.until > now) return kept.answer;
    const pending = this.#inflight.get(key);
    if (pending) return pending;
    this.#stats.originRequests++;
    const asked = this.env.LowLatencyStream.getByName(streamId).playlist(req, opts) as Promise<PlaylistAnswer>;
    this.#inflight.set(key, asked);
    try {
      const answer = await asked;
      if (answer.status === 200) {
        const keepMs = req.directives.msn !== undefined ? answer.targetS * 1000 : 100;
        this.#kept.set(key, { answer, until: Date.now() + keepMs });
        this.#prune(Date.now());
      }
      return answer;
    } finally {
      this.#inflight.delete(key);
    }
  }

  async stats(): Promise<RelayStats> {
    return { ...this.#stats };
  }

  #prune(now: number): void {
    if (this.#kept.size < 256) return;
    for (const [k, v] of this.#kept) if (v.until <= now) this.#kept.delete(k);
  }
}
