// One Durable Object per live stream (named by the stream id) holding its low-latency playlists: the media node
// announces parts and segments here (POST /hooks/llhls/<streamId>/announce, signed), viewers' playlist requests
// come here through /play, and requests with delivery directives wait here until the part they ask for exists.
//
// - each rendition's playlist is rendered once per change and gzipped once; every waiting request for it is
//   answered from those bytes (a change anywhere changes every rendition's reports, so any change is a new version);
// - waiting requests hold no timers of their own: one sweep, four times a second while any request waits,
//   answers those that waited 3 target durations with 503;
// - the playlist state is written to the object's storage after every change (without holding answers for it),
//   so a restarted object carries on where it was.
import { DurableObject } from "cloudflare:workers";
import { type LlAnnounce, parseAnnounce } from "../../../shared/llhls/announce.ts";
import type { Env } from "../env.ts";
import {
  applyAnnounce,
  blockingTimeoutMs,
  type Directives,
  directiveStatus,
  isEnded,
  type LlBroadcast,
  type LlRendition,
  partStatus,
  renderPlaylist,
  targetDuration,
} from "./model.ts";

/** What a playlist request gets back (the front Worker turns it into a response). */
export interface PlaylistAnswer {
  status: 200 | 400 | 404 | 503;
  /** the playlist (gzipped when `gzip`), or a JSON error */
  body: Uint8Array;
  gzip: boolean;
  /** the request waited for its part (its answer may be cached as long as a blocking answer may) */
  blocked: boolean;
  /** TARGETDURATION of the playlist, for cache lifetimes */
  targetS: number;
  error?: { code: string; message: string };
}

export interface PlaylistRequest {
  broadcastId: string;
  rendition: string;
  directives: Directives;
}

export interface LowLatencyStats {
  announces: number;
  playlistRequests: number;
  /** requests that had to wait for their part */
  held: number;
  timeouts: number;
  waiting: number;
  partWaits: number;
}

interface Waiter {
  directives: Directives;
  since: number;
  resolve(answer: PlaylistAnswer): void;
}

interface PartWaiter {
  uri: string;
  since: number;
  resolve(ready: boolean): void;
}

interface Rendered {
  version: number;
  gz: Promise<Uint8Array>;
}

const STATE_KEY = "broadcast";
/** An ended broadcast's playlists stay this long (players finish; late requests see ENDLIST), then go. */
const KEEP_ENDED_MS = 3600_000;

export class LowLatencyStream extends DurableObject<Env> {
  #b: LlBroadcast | undefined;
  readonly #waiters = new Map<string, Waiter[]>();
  readonly #partWaiters = new Map<string, PartWaiter[]>();
  readonly #rendered = new Map<string, Rendered>();
  #sweep: ReturnType<typeof setInterval> | undefined;
  readonly #stats: LowLatencyStats = { announces: 0, playlistRequests: 0, held: 0, timeouts: 0, waiting: 0, partWaits: 0 };

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => {
      this.#b = await ctx.storage.get<LlBroadcast>(STATE_KEY);
    });
  }

  /** The media node's announcement (already signature-checked by the front Worker; checked against the schema here too). */
  async announce(raw: LlAnnounce): Promise<{ applied: number; repeated: number; refused: string[] }> {
    const parsed = parseAnnounce(raw);
    if (!parsed.ok) return { applied: 0, repeated: 0, refused: [parsed.error] };
    this.#stats.announces++;
    const before = this.#b;
    const { broadcast, result } = applyAnnounce(before, parsed.announce, Date.now());
    if (before && broadcast !== before) this.#retire(before);
    this.#b = broadcast;
    if (result.refused.length > 0) console.warn(`llhls ${parsed.announce.streamId}: refused ${result.refused.join("; ")}`);
    if (result.applied > 0 || broadcast !== before) {
      void this.ctx.storage.put(STATE_KEY, broadcast, { allowUnconfirmed: true });
      if (isEnded(broadcast)) void this.ctx.storage.setAlarm(Date.now() + KEEP_ENDED_MS);
      this.#wake();
    }
    return result;
  }

  async playlist(req: PlaylistRequest, opts: { gzip: boolean }): Promise<PlaylistAnswer> {
    this.#stats.playlistRequests++;
    const b = this.#b;
    const r = b?.broadcastId === req.broadcastId ? b.renditions.find((x) => x.name === req.rendition) : undefined;
    if (!b || !r) return error(404, "not_found", "no such low-latency playlist (the broadcast is not live here)");
    const status = directiveStatus(b, r, req.directives);
    if (status === "too-far") return error(400, "directive_too_far", "_HLS_msn/_HLS_part is too far ahead of the playlist");
    const answer = await (status === "ready" ? this.#answer(b, r, false) : this.#hold(r, req.directives));
    return opts.gzip || answer.status !== 200 ? answer : { ...answer, body: await gunzip(answer.body), gzip: false };
  }

  /** A viewer asked for a part that is not stored yet: wait for it if it is the hinted next part. */
  async awaitPart(req: { broadcastId: string; rendition: string; uri: string }): Promise<boolean> {
    const b = this.#b;
    const r = b?.broadcastId === req.broadcastId ? b.renditions.find((x) => x.name === req.rendition) : undefined;
    if (!b || !r) return false;
    const status = partStatus(r, req.uri);
    if (status === "listed") return true;
    if (status === "unknown") return false;
    this.#stats.partWaits++;
    return new Promise<boolean>((resolve) => {
      const key = `${r.name}`;
      const list = this.#partWaiters.get(key) ?? [];
      list.push({ uri: req.uri, since: Date.now(), resolve });
      this.#partWaiters.set(key, list);
      this.#ensureSweep();
    });
  }

  async stats(): Promise<LowLatencyStats & { broadcastId: string | null; version: number }> {
    let waiting = 0;
    for (const list of this.#waiters.values()) waiting += list.length;
    return { ...this.#stats, waiting, broadcastId: this.#b?.broadcastId ?? null, version: this.#b?.version ?? 0 };
  }

  override async alarm(): Promise<void> {
    const b = this.#b;
    if (!b || !isEnded(b) || Date.now() - b.updatedAt < KEEP_ENDED_MS) return;
    this.#b = undefined;
    this.#rendered.clear();
    await this.ctx.storage.deleteAll();
  }

  #answer(b: LlBroadcast, r: LlRendition, blocked: boolean): Promise<PlaylistAnswer> {
    let rendered = this.#rendered.get(r.name);
    if (!rendered || rendered.version !== b.version) {
      rendered = { version: b.version, gz: gzip(renderPlaylist(b, r)) };
      this.#rendered.set(r.name, rendered);
    }
    const targetS = targetDuration(b, r);
    return rendered.gz.then((body) => ({ status: 200, body, gzip: true, blocked, targetS }));
  }

  #hold(r: LlRendition, directives: Directives): Promise<PlaylistAnswer> {
    this.#stats.held++;
    return new Promise<PlaylistAnswer>((resolve) => {
      const list = this.#waiters.get(r.name) ?? [];
      list.push({ directives, since: Date.now(), resolve });
      this.#waiters.set(r.name, list);
      this.#ensureSweep();
    });
  }

  /** The playlist changed: answer every waiting request it now satisfies, each rendition rendered once. */
  #wake(): void {
    const b = this.#b;
    if (!b) return;
    for (const [name, list] of this.#waiters) {
      const r = b.renditions.find((x) => x.name === name);
      if (!r) continue;
      const keep: Waiter[] = [];
      for (const w of list) {
        if (directiveStatus(b, r, w.directives) === "ready") void this.#answer(b, r, true).then(w.resolve);
        else keep.push(w);
      }
      if (keep.length > 0) this.#waiters.set(name, keep);
      else this.#waiters.delete(name);
    }
    for (const [name, list] of this.#partWaiters) {
      const r = b.renditions.find((x) => x.name === name);
      const keep: PartWaiter[] = [];
      for (const w of list) {
        const s = r ? partStatus(r, w.uri) : "unknown";
        if (s === "hinted") keep.push(w);
        else w.resolve(s === "listed");
      }
      if (keep.length > 0) this.#partWaiters.set(name, keep);
      else this.#partWaiters.delete(name);
    }
  }

  /** While anything waits: requests that waited three target durations get 503; parts waited for as long, "not there". */
  #ensureSweep(): void {
    this.#sweep ??= setInterval(() => {
      const now = Date.now();
      const b = this.#b;
      for (const [name, list] of this.#waiters) {
        const r = b?.renditions.find((x) => x.name === name);
        const limit = b && r ? blockingTimeoutMs(b, r) : 0;
        const keep = list.filter((w) => {
          if (now - w.since < limit) return true;
          this.#stats.timeouts++;
          w.resolve(error(503, "part_not_available", "the part asked for did not appear within three target durations"));
          return false;
        });
        if (keep.length > 0) this.#waiters.set(name, keep);
        else this.#waiters.delete(name);
      }
      for (const [name, list] of this.#partWaiters) {
        const r = b?.renditions.find((x) => x.name === name);
        const limit = b && r ? blockingTimeoutMs(b, r) : 0;
        const keep = list.filter((w) => (now - w.since < limit ? true : (w.resolve(false), false)));
        if (keep.length > 0) this.#partWaiters.set(name, keep);
        else this.#partWaiters.delete(name);
      }
      if (this.#waiters.size === 0 && this.#partWaiters.size === 0) {
        clearInterval(this.#sweep);
        this.#sweep = undefined;
      }
    }, 250);
  }

  /** A new broadcast replaced `old`: its waiting requests get what it ended with (404 now). */
  #retire(old: LlBroadcast): void {
    this.#rendered.clear();
    for (const list of this.#waiters.values()) for (const w of list) w.resolve(error(404, "not_found", `broadcast ${old.broadcastId} is over`));
    this.#waiters.clear();
    for (const list of this.#partWaiters.values()) for (const w of list) w.resolve(false);
    this.#partWaiters.clear();
  }
}

function error(status: 400 | 404 | 503, code: string, message: string): PlaylistAnswer {
  return { status, body: new TextEncoder().encode(JSON.stringify({ error: { code, message } })), gzip: false, blocked: false, targetS: 0, error: { code, message } };
}

async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
