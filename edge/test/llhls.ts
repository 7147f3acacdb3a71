// A scripted low-latency packager for tests inside workerd: it does what a media node does for a low-latency
// broadcast, by hand — stores each part (and segment, the concatenation of its parts) in the MEDIA bucket, then
// announces it through the Worker's real signed route — so the conformance suite can put the edge in any state
// the spec talks about. Plus a reader for the gzipped playlist answers.
import { type LlUpdate, llPartUri, llSegmentUri } from "../../shared/llhls/announce.ts";
import { signWebhook } from "../../shared/signing/webhooks.ts";
import { edge, env } from "./streams.ts";

export interface ScriptOptions {
  broadcastId?: string;
  renditions?: string[];
  partS?: number;
  partTargetS?: number;
  segmentTargetS?: number;
  windowSegments?: number;
  /** unix ms of the first frame */
  startMs?: number;
}

export class ScriptedPackager {
  readonly streamId: string;
  readonly broadcastId: string;
  readonly renditions: string[];
  readonly partS: number;
  readonly partTargetS: number;
  readonly segmentTargetS: number;
  readonly windowSegments: number;
  /** the segment being cut and the next part's index in it */
  msn = 0;
  index = 0;
  partId = 0;
  #seq = 0;
  #epoch = 0;
  #mediaS = 0;
  #discontinuity = false;
  readonly #startMs: number;
  readonly #parts = new Map<string, Uint8Array[]>();

  constructor(streamId: string, opts: ScriptOptions = {}) {
    this.streamId = streamId;
    this.broadcastId = opts.broadcastId ?? `brd_${crypto.randomUUID().slice(0, 8)}`;
    this.renditions = opts.renditions ?? ["360p", "240p"];
    this.partS = opts.partS ?? 1 / 3;
    this.partTargetS = opts.partTargetS ?? 0.337;
    this.segmentTargetS = opts.segmentTargetS ?? 2;
    this.windowSegments = opts.windowSegments ?? 6;
    this.#startMs = opts.startMs ?? Date.now();
  }

  key(rendition: string, name: string): string {
    return `live/${this.streamId}/${this.broadcastId}/${rendition}/${name}`;
  }

  /** the playlist's path under /play/<id or token>/ */
  playlist(rendition = this.renditions[0]!): string {
    return `${this.broadcastId}/${rendition}/ll.m3u8`;
  }

  async announce(updates: LlUpdate[], opts: { secret?: string; streamId?: string } = {}): Promise<Response> {
    const body = JSON.stringify({ streamId: opts.streamId ?? this.streamId, broadcastId: this.broadcastId, seq: ++this.#seq, updates });
    const headers = await signWebhook(opts.secret ?? env.EDGE_INGRESS_SECRET!, `${this.broadcastId}.${this.#seq}`, body);
    return edge(`/hooks/llhls/${this.streamId}/announce`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body });
  }

  async start(): Promise<void> {
    await this.#ok(this.announce([{ type: "start", segmentTargetS: this.segmentTargetS, windowSegments: this.windowSegments, renditions: this.renditions.map((name) => ({ name, partTargetS: this.partTargetS })) }]));
  }

  /** One part of every rendition (or those named): stored, then announced in one batch. Returns its part number. */
  async part(opts: { durationS?: number; renditions?: string[]; store?: boolean } = {}): Promise<number> {
    const id = this.partId++;
    const uri = llPartUri(id);
    const durationS = opts.durationS ?? this.partS;
    const names = opts.renditions ?? this.renditions;
    const updates: LlUpdate[] = [];
    for (const r of names) {
      const bytes = new TextEncoder().encode(`${r} part ${id} of ${this.msn}.${this.index}`);
      if (opts.store !== false) {
        if (this.index === 0) await env.MEDIA!.put(this.key(r, `e${this.#epoch}-init.mp4`), new Uint8Array([0, 0, 0, 8]));
        await env.MEDIA!.put(this.key(r, uri), bytes);
      }
      this.#parts.set(r, [...(this.index === 0 ? [] : (this.#parts.get(r) ?? [])), bytes]);
      const u: LlUpdate = { type: "part", rendition: r, msn: this.msn, index: this.index, uri, durationS, independent: this.index === 0, map: `e${this.#epoch}-init.mp4` };
      if (this.index === 0) {
        u.programDateTimeMs = Math.round(this.#startMs + this.#mediaS * 1000);
        if (this.#discontinuity) u.discontinuity = true;
      }
      updates.push(u);
    }
    this.#discontinuity = false;
    this.#mediaS += durationS;
    this.index++;
    await this.#ok(this.announce(updates));
    return id;
  }

  /** Ends the current segment: its object stored, then announced. */
  async endSegment(): Promise<number> {
    const msn = this.msn;
    const updates: LlUpdate[] = [];
    for (const r of this.renditions) {
      const parts = this.#parts.get(r) ?? [];
      const bytes = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
      let at = 0;
      for (const p of parts) {
        bytes.set(p, at);
        at += p.byteLength;
      }
      await env.MEDIA!.put(this.key(r, llSegmentUri(msn)), bytes);
      updates.push({ type: "segment", rendition: r, msn, uri: llSegmentUri(msn), durationS: this.index * this.partS });
    }
    await this.#ok(this.announce(updates));
    this.msn++;
    this.index = 0;
    return msn;
  }

  /** `n` whole segments of `parts` parts each. */
  async segments(n: number, parts = 6): Promise<void> {
    for (let i = 0; i < n; i++) {
      while (this.index < parts) await this.part();
      await this.endSegment();
    }
  }

  /** The encoder restarted: the next segment follows a discontinuity, with a new init segment. */
  restart(): void {
    this.#epoch++;
    this.#discontinuity = true;
  }

  async end(renditions?: string[]): Promise<void> {
    await this.#ok(this.announce([{ type: "end", ...(renditions ? { renditions } : {}) }]));
  }

  async #ok(res: Promise<Response>): Promise<void> {
    const r = await res;
    if (r.status !== 200) throw new Error(`announce answered ${r.status}: ${await r.text()}`);
    const body = (await r.json()) as { refused: string[] };
    if (body.refused.length > 0) throw new Error(`announce refused: ${body.refused.join("; ")}`);
  }
}

/** The body of a playlist answer as text, gunzipping it when the Worker sent it gzipped. */
export async function playlistText(res: Response): Promise<string> {
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (res.headers.get("content-encoding") === "gzip" && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text();
  }
  return new TextDecoder().decode(bytes);
}

/** Resolves once the stream's object holds at least `n` waiting playlist requests (so a test knows a request is parked). */
export async function untilWaiting(streamId: string, n = 1, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = await env.LowLatencyStream.getByName(streamId).stats();
    if (stats.waiting >= n) return;
    if (Date.now() > deadline) throw new Error(`the stream's object holds ${stats.waiting} waiting requests, not ${n}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
