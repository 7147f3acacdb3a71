// The LL-HLS playlists of one live broadcast, as its stream's object holds them: what the media node announced
// (parts and segments, once stored), rendered into one media playlist per rendition, and the blocking-reload
// rules that decide when a request with delivery directives may be answered. Pure: no I/O, no clock of its own
// (llhls.test.ts drives it directly; the conformance suite drives the object through the Worker).
//
// Spec: draft-pantos-hls-rfc8216bis (4.4.3.7 PART-INF, 4.4.3.8 SERVER-CONTROL, 4.4.4.9 PART, 4.4.5.2
// RENDITION-REPORT, 4.4.5.3 PRELOAD-HINT, 6.2.5.2 blocking reload, 6.2.6 part delivery) and its Appendix B.1
// delivery profile.
import type { LlAnnounce, LlUpdate } from "../../../shared/llhls/announce.ts";
import { LL_PLAYLIST_NAME, llPartId, llPartUri } from "../../../shared/llhls/announce.ts";

export interface LlPart {
  uri: string;
  durationS: number;
  independent: boolean;
}

export interface LlSegment {
  msn: number;
  parts: LlPart[];
  map: string;
  /** unix ms: EXT-X-PROGRAM-DATE-TIME */
  pdtMs?: number;
  discontinuity: boolean;
  /** set once the segment object is stored: its EXTINF line follows its parts */
  uri?: string;
  durationS?: number;
}

export interface LlRendition {
  name: string;
  partTargetS: number;
  bandwidth?: number;
  /** the sliding window; the last one may be in progress (no uri yet) */
  segments: LlSegment[];
  /** EXT-X-DISCONTINUITY-SEQUENCE: discontinuities before the first segment listed */
  discontinuitySeq: number;
  /** the preload hint: the part number the next part will have */
  nextPartId: number;
  ended: boolean;
}

export interface LlBroadcast {
  broadcastId: string;
  segmentTargetS: number;
  windowSegments: number;
  renditions: LlRendition[];
  /** bumped by every change: one render per rendition per version */
  version: number;
  /** unix ms of the last change */
  updatedAt: number;
}

/** Parts are listed for the segments that end within this many target durations of the playlist's end. */
export const PART_WINDOW_TARGET_DURATIONS = 3;

export function newBroadcast(broadcastId: string, now: number): LlBroadcast {
  return { broadcastId, segmentTargetS: 2, windowSegments: 6, renditions: [], version: 0, updatedAt: now };
}

export interface ApplyResult {
  applied: number;
  /** updates that changed nothing (repeats) */
  repeated: number;
  /** updates that cannot be applied (unknown rendition, a part out of order), with why */
  refused: string[];
}

/**
 * Applies an announcement. A different broadcast id than the current one starts over (a new broadcast of the
 * stream); repeats change nothing, so a batch the node sends twice is harmless.
 */
export function applyAnnounce(current: LlBroadcast | undefined, a: LlAnnounce, now: number): { broadcast: LlBroadcast; result: ApplyResult } {
  const b = current && current.broadcastId === a.broadcastId ? current : newBroadcast(a.broadcastId, now);
  const result: ApplyResult = { applied: 0, repeated: 0, refused: [] };
  for (const u of a.updates) {
    const outcome = applyUpdate(b, u);
    if (outcome === true) result.applied++;
    else if (outcome === false) result.repeated++;
    else result.refused.push(outcome);
  }
  if (result.applied > 0 || b !== current) {
    b.version++;
    b.updatedAt = now;
  }
  return { broadcast: b, result };
}

/** true: applied; false: a repeat; a string: refused, and why. */
function applyUpdate(b: LlBroadcast, u: LlUpdate): boolean | string {
  switch (u.type) {
    case "start": {
      b.segmentTargetS = u.segmentTargetS;
      b.windowSegments = u.windowSegments;
      let changed = false;
      for (const r of u.renditions) {
        const have = b.renditions.find((x) => x.name === r.name);
        if (have) {
          changed ||= have.partTargetS !== r.partTargetS;
          have.partTargetS = r.partTargetS;
          if (r.bandwidth !== undefined) have.bandwidth = r.bandwidth;
        } else {
          b.renditions.push({ name: r.name, partTargetS: r.partTargetS, ...(r.bandwidth !== undefined ? { bandwidth: r.bandwidth } : {}), segments: [], discontinuitySeq: 0, nextPartId: 0, ended: false });
          changed = true;
        }
      }
      return changed;
    }
    case "part": {
      const r = b.renditions.find((x) => x.name === u.rendition);
      if (!r) return `part of unknown rendition ${u.rendition}`;
      if (r.ended) return false;
      const last = r.segments.at(-1);
      const part: LlPart = { uri: u.uri, durationS: u.durationS, independent: u.independent };
      const bump = () => (r.nextPartId = Math.max(r.nextPartId, (llPartId(u.uri) ?? -1) + 1));
      if (last && last.msn === u.msn && last.uri === undefined) {
        if (u.index < last.parts.length) return false;
        if (u.index > last.parts.length) return `${u.rendition}: part ${u.msn}.${u.index} before part ${u.msn}.${last.parts.length}`;
        last.parts.push(part);
        bump();
        return true;
      }
      if (last && u.msn <= last.msn) return false;
      if (last && last.uri === undefined) return `${u.rendition}: part ${u.msn}.${u.index} before segment ${last.msn} ended`;
      if (last && u.msn !== last.msn + 1) return `${u.rendition}: part of segment ${u.msn} after segment ${last.msn}`;
      if (u.index !== 0) return `${u.rendition}: segment ${u.msn} begins with part ${u.index}`;
      const seg: LlSegment = { msn: u.msn, parts: [part], map: u.map, discontinuity: u.discontinuity === true };
      if (u.programDateTimeMs !== undefined) seg.pdtMs = u.programDateTimeMs;
      r.segments.push(seg);
      bump();
      return true;
    }
    case "segment": {
      const r = b.renditions.find((x) => x.name === u.rendition);
      if (!r) return `segment of unknown rendition ${u.rendition}`;
      const seg = r.segments.find((s) => s.msn === u.msn);
      if (!seg) return r.segments.length > 0 && u.msn < r.segments[0]!.msn ? false : `${u.rendition}: segment ${u.msn} without its parts`;
      if (seg.uri !== undefined) return false;
      seg.uri = u.uri;
      seg.durationS = u.durationS;
      trim(b, r);
      return true;
    }
    case "end": {
      let changed = false;
      for (const r of b.renditions) {
        if (u.renditions && !u.renditions.includes(r.name)) continue;
        if (!r.ended) changed = true;
        r.ended = true;
        // A segment never finished has no object to list: its parts go (players have what they loaded).
        if (r.segments.at(-1)?.uri === undefined) r.segments.pop();
      }
      return changed;
    }
  }
}

/** Keeps `windowSegments` finished segments (plus the one in progress). */
function trim(b: LlBroadcast, r: LlRendition): void {
  const finished = () => r.segments.filter((s) => s.uri !== undefined).length;
  while (finished() > b.windowSegments) {
    r.segments.shift();
    // The first segment listed carries no DISCONTINUITY tag: the sequence number says it instead.
    if (r.segments[0]?.discontinuity) r.discontinuitySeq++;
  }
}

export function isEnded(b: LlBroadcast): boolean {
  return b.renditions.length > 0 && b.renditions.every((r) => r.ended);
}

/** TARGETDURATION: at least the configured one, and every EXTINF rounded to the nearest integer (RFC 8216 4.3.3.1). */
export function targetDuration(b: LlBroadcast, r: LlRendition): number {
  let max = b.segmentTargetS;
  for (const s of r.segments) if (s.durationS !== undefined) max = Math.max(max, Math.round(s.durationS));
  return Math.max(1, Math.ceil(max));
}

/** PART-HOLD-BACK: three times the largest PART-TARGET of the broadcast's renditions (Apple's MUST, the RFC's SHOULD). */
export function partHoldBackS(b: LlBroadcast): number {
  return 3 * Math.max(...b.renditions.map((r) => r.partTargetS));
}

/** The last segment listed (finished or in progress) and its last part: what a rendition report says. */
export function lastPartOf(r: LlRendition): { msn: number; part: number } | undefined {
  const last = r.segments.at(-1);
  if (!last || last.parts.length === 0) return undefined;
  return { msn: last.msn, part: last.parts.length - 1 };
}

const f5 = (x: number) => x.toFixed(5);
const f3 = (x: number) => x.toFixed(3);

/** The rendition's LL-HLS media playlist. */
export function renderPlaylist(b: LlBroadcast, r: LlRendition): string {
  const td = targetDuration(b, r);
  const first = r.segments[0];
  const lines = ["#EXTM3U", "#EXT-X-VERSION:9", `#EXT-X-TARGETDURATION:${td}`, `#EXT-X-MEDIA-SEQUENCE:${first?.msn ?? 0}`];
  if (r.discontinuitySeq > 0) lines.push(`#EXT-X-DISCONTINUITY-SEQUENCE:${r.discontinuitySeq}`);
  if (!r.ended) lines.push(`#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=${f3(partHoldBackS(b))},HOLD-BACK=${f3(3 * td)}`);
  lines.push(`#EXT-X-PART-INF:PART-TARGET=${f3(r.partTargetS)}`, "#EXT-X-INDEPENDENT-SEGMENTS");
  // Parts only near the end: of the segments that end within 3 target durations of the playlist's end.
  let fromEnd = 0;
  let partsFrom = r.segments.length;
  for (let i = r.segments.length - 1; i >= 0; i--) {
    if (fromEnd >= PART_WINDOW_TARGET_DURATIONS * td) break;
    partsFrom = i;
    const s = r.segments[i]!;
    fromEnd += s.durationS ?? s.parts.reduce((t, p) => t + p.durationS, 0);
  }
  let map: string | undefined;
  r.segments.forEach((s, i) => {
    if (s.discontinuity && i > 0) lines.push("#EXT-X-DISCONTINUITY");
    if (s.map !== map) {
      lines.push(`#EXT-X-MAP:URI="${s.map}"`);
      map = s.map;
    }
    if (s.pdtMs !== undefined) lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(s.pdtMs).toISOString()}`);
    if (i >= partsFrom) {
      for (const p of s.parts) lines.push(`#EXT-X-PART:DURATION=${f5(p.durationS)},URI="${p.uri}"${p.independent ? ",INDEPENDENT=YES" : ""}`);
    }
    if (s.uri !== undefined && s.durationS !== undefined) lines.push(`#EXTINF:${f5(s.durationS)},`, s.uri);
  });
  if (!r.ended) lines.push(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="${llPartUri(r.nextPartId)}"`);
  for (const other of b.renditions) {
    if (other === r) continue;
    const last = lastPartOf(other);
    if (!last) continue;
    lines.push(`#EXT-X-RENDITION-REPORT:URI="../${other.name}/${LL_PLAYLIST_NAME}",LAST-MSN=${last.msn},LAST-PART=${last.part}`);
  }
  if (r.ended) lines.push("#EXT-X-ENDLIST");
  return lines.join("\n") + "\n";
}

// ---- blocking playlist reload (6.2.5.2) ---------------------------------------------------------------------

export interface Directives {
  msn?: number;
  part?: number;
}

export type DirectiveCheck = { ok: true; directives: Directives } | { ok: false; message: string };

const WHOLE = /^(0|[1-9]\d{0,11})$/;

/**
 * `_HLS_msn` / `_HLS_part` from a playlist URL. `_HLS_skip` is not looked at: delta updates are not offered
 * (no CAN-SKIP-UNTIL), so a client asking for one gets the whole playlist, as the spec wants.
 */
export function parseDirectives(params: URLSearchParams): DirectiveCheck {
  const msn = params.get("_HLS_msn");
  const part = params.get("_HLS_part");
  if (part !== null && msn === null) return { ok: false, message: "_HLS_part without _HLS_msn" };
  if (msn !== null && !WHOLE.test(msn)) return { ok: false, message: "_HLS_msn is not a whole number" };
  if (part !== null && !WHOLE.test(part)) return { ok: false, message: "_HLS_part is not a whole number" };
  const d: Directives = {};
  if (msn !== null) d.msn = Number(msn);
  if (part !== null) d.part = Number(part);
  return { ok: true, directives: d };
}

/**
 * Whether a request with directives may be answered now (`ready`), must wait for the playlist to change
 * (`wait`), or asks too far ahead (`too-far`, answered 400). Once the rendition has ENDLIST, directives are
 * ignored (`ready`).
 */
export function directiveStatus(b: LlBroadcast, r: LlRendition, d: Directives): "ready" | "wait" | "too-far" {
  const msn = d.msn;
  if (msn === undefined || r.ended) return "ready";
  const last = r.segments.at(-1);
  const inProgress = last && last.uri === undefined ? last : undefined;
  const lastFinished = [...r.segments].reverse().find((s) => s.uri !== undefined)?.msn ?? (r.segments[0] ? r.segments[0].msn - 1 : -1);
  // "greater than the last Media Segment's MSN plus two": a Partial Segment in progress is not a Media Segment yet.
  if (msn > lastFinished + 2) return "too-far";
  if (d.part !== undefined) {
    const lp = lastPartOf(r);
    const limit = advancePartLimit(r.partTargetS);
    const perSegment = Math.max(1, Math.round(targetDuration(b, r) / r.partTargetS));
    const ahead = lp ? (msn - lp.msn) * perSegment + (d.part - lp.part) : msn * perSegment + d.part + 1;
    if (ahead > limit) return "too-far";
  }
  if (d.part === undefined) return msn <= lastFinished ? "ready" : "wait";
  // Part N of segment M, or anything later; an index past M's last part means part 0 of M+1.
  if (inProgress && msn === inProgress.msn) return d.part < inProgress.parts.length ? "ready" : "wait";
  if (msn > (last?.msn ?? -1)) return "wait";
  const seg = r.segments.find((s) => s.msn === msn);
  if (!seg) return "ready"; // before the window: long there
  if (d.part < seg.parts.length) return "ready";
  const next = r.segments.find((s) => s.msn === msn + 1);
  return next && next.parts.length > 0 ? "ready" : "wait";
}

/** How many parts past the last one a request may ask for: 3 / PART-TARGET below one second, else 3. */
export function advancePartLimit(partTargetS: number): number {
  return partTargetS < 1 ? Math.ceil(3 / partTargetS) : 3;
}

/** A blocking request is answered 503 once it has waited this long: three target durations. */
export function blockingTimeoutMs(b: LlBroadcast, r: LlRendition): number {
  return 3 * targetDuration(b, r) * 1000;
}

/** Whether a part named `uri` has been listed, is the hinted next one, or neither (never will be, as far as we know). */
export function partStatus(r: LlRendition, uri: string): "listed" | "hinted" | "unknown" {
  const id = llPartId(uri);
  if (id === undefined) return "unknown";
  if (id < r.nextPartId) return "listed";
  return id === r.nextPartId && !r.ended ? "hinted" : "unknown";
}
