// Cuts publishers whose stream key the edge revoked while they were live: every interval, the keys of all
// Streams API streams this node carries are checked in one call; a refused one is cut (its stream ends with
// reason `kicked`). When the edge cannot be asked, nothing is cut (the offline rule, key-check.ts).
import type { Logger } from "../log.ts";
import { EdgeUnreachableError, type KeyCheckClient, type KeyRegistry, refusalText } from "./key-check.ts";

export interface WatchedPublish {
  streamId: string;
  kv: number;
}

export interface KeyWatchOptions {
  client: KeyCheckClient;
  registry: KeyRegistry;
  intervalMs: number;
  /** the node's live Streams API publishes */
  live(): WatchedPublish[];
  /** ends the stream and disconnects its publisher */
  cut(streamId: string, why: string): Promise<void>;
  log: Logger;
  /** keys per call (the edge's STREAM_KEY_CHECK_MAX) */
  batch?: number;
}

export class KeyWatch {
  readonly #o: KeyWatchOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(opts: KeyWatchOptions) {
    this.#o = opts;
  }

  start(): void {
    this.#stopped = false;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.tick()
        .then(
          () => {},
          (error: unknown) => this.#o.log.error("stream key watch failed", { error }),
        )
        .finally(() => {
          this.#running = undefined;
          this.#schedule();
        });
    }, this.#o.intervalMs);
    this.#timer.unref();
  }

  /** One round of checks; returns the streams it cut. */
  async tick(): Promise<string[]> {
    const live = this.#o.live();
    const cut: string[] = [];
    const size = this.#o.batch ?? 256;
    for (let i = 0; i < live.length; i += size) {
      const keys = live.slice(i, i + size);
      let verdicts;
      try {
        verdicts = await this.#o.client.check(keys);
      } catch (error) {
        if (!(error instanceof EdgeUnreachableError)) throw error;
        this.#o.log.warn("edge unreachable: live stream keys not re-checked", { streams: keys.length, error: error.message });
        return cut;
      }
      for (const [j, verdict] of verdicts.entries()) {
        const key = keys[j]!;
        this.#o.registry.learn(key.streamId, verdict);
        if (verdict.ok) continue;
        const why = refusalText(verdict, key.kv);
        this.#o.log.warn("stream key revoked while live: cutting the publisher", { streamId: key.streamId, kv: key.kv, why });
        cut.push(key.streamId);
        await this.#o.cut(key.streamId, why).catch((error: unknown) => this.#o.log.error("could not cut a revoked publisher", { streamId: key.streamId, error }));
      }
    }
    return cut;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}
