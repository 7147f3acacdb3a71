// The low-latency packager on real FFmpeg output: a broadcaster publishes over RTMP with a low-latency key to a
// real media node, whose FFmpeg writes fragmented MP4 per rendition to pipes and whose packager cuts parts and
// segments from it. A stand-in for the edge's announcement route (signature and schema checked as the edge does)
// records what is announced, and checks at arrival that it is already stored. Then, on what was published:
// part durations against PART-TARGET (and the 85% floor), the cadence, INDEPENDENT=YES against real keyframes
// (ffprobe), each segment = the concatenation of its parts, and the classic playlists of the same segments read
// with an independent parser.
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LlUpdate } from "../../shared/llhls/announce.ts";
import { type AnnounceReceiver, startAnnounceReceiver } from "../helpers/announce-receiver.ts";
import { TEST_SECRETS } from "../helpers/edge.ts";
import { probeFmp4Segment, publishTestSource } from "../helpers/ffmpeg.ts";
import { parsePlaylist } from "../helpers/hls.ts";
import type { GroupProcess } from "../helpers/process.ts";
import { type MediaFixture, startMediaFixture } from "./fixture.ts";

const SECRET = TEST_SECRETS.EDGE_INGRESS_SECRET;

type Part = Extract<LlUpdate, { type: "part" }> & { at: number };
type Segment = Extract<LlUpdate, { type: "segment" }> & { at: number };

describe("low-latency packager on a live FFmpeg publish", () => {
  let media: MediaFixture;
  let receiver: AnnounceReceiver;
  let publisher: GroupProcess | undefined;
  let keyBase = "";
  let partTargetS = 0;
  const parts: Part[] = [];
  const segments: Segment[] = [];
  let started: Extract<LlUpdate, { type: "start" }> | undefined;
  let ended = false;

  beforeAll(async () => {
    receiver = await startAnnounceReceiver(SECRET);
    media = await startMediaFixture({}, { llhls: { llhlsEdgeUrl: receiver.url, announceSecrets: [SECRET], partMs: 333, announceTimeoutMs: 2000 } });
    // What is announced must already be stored: checked the moment the announcement arrives.
    receiver.onAnnounce = (a) => {
      for (const u of a.updates) {
        if (u.type !== "part" && u.type !== "segment") continue;
        const file = join(media.storeDir, "live", a.streamId, a.broadcastId, u.rendition, u.uri);
        if (!existsSync(file)) throw new Error(`${u.rendition}/${u.uri} announced before it was stored`);
        if (u.type === "part" && !existsSync(join(media.storeDir, "live", a.streamId, a.broadcastId, u.rendition, u.map))) throw new Error(`${u.map} not stored when ${u.uri} was announced`);
      }
    };
    const streamId = `ll-${Date.now().toString(36)}`;
    const next = media.nextSession(streamId);
    publisher = publishTestSource(`${media.rtmpBase}/live/${streamId}?token=${await media.token(streamId, { lat: "low" })}`, { size: "640x360", durationS: 9 });
    const rec = await next;
    keyBase = rec.session.keyBase;
    await publisher.exited;
    await rec.whenEnded(60_000);
    for (const r of receiver.received) {
      for (const u of r.announce.updates) {
        if (u.type === "start") started ??= u;
        else if (u.type === "part") parts.push({ ...u, at: r.at });
        else if (u.type === "segment") segments.push({ ...u, at: r.at });
        else ended = true;
      }
    }
    partTargetS = started?.renditions[0]?.partTargetS ?? 0;
  });
  afterAll(async () => {
    await publisher?.kill();
    await media?.stop();
    await receiver?.close();
  });

  const of = (rendition: string) => ({ parts: parts.filter((p) => p.rendition === rendition), segments: segments.filter((s) => s.rendition === rendition) });

  it("announces the broadcast, every part and segment of every rendition in order, and its end, all signed", () => {
    expect(receiver.refused).toEqual([]);
    expect(receiver.problems).toEqual([]);
    expect(started?.renditions.map((r) => r.name)).toEqual(["360p", "240p"]);
    expect(partTargetS).toBe(0.337);
    expect(ended).toBe(true);
    for (const name of ["360p", "240p"]) {
      const { parts: ps, segments: ss } = of(name);
      expect(ss.length).toBeGreaterThanOrEqual(3);
      // msn/index contiguous, part numbers strictly increasing, each segment's end after its parts
      let msn = 0;
      let index = 0;
      for (const p of ps) {
        if (p.msn !== msn) {
          expect(p.msn).toBe(msn + 1);
          expect(ss.find((s) => s.msn === msn)).toBeDefined();
          msn = p.msn;
          index = 0;
        }
        expect(p.index).toBe(index++);
      }
      expect(ps.map((p) => Number(p.uri.slice(4, -4)))).toEqual(ps.map((_, i) => i));
      for (const s of ss) expect(s.at).toBeGreaterThanOrEqual(ps.filter((p) => p.msn === s.msn).at(-1)!.at);
    }
  });

  it("keeps every part within PART-TARGET, and at 85% of it or more unless independent or the last of its segment", () => {
    for (const name of ["360p", "240p"]) {
      const { parts: ps } = of(name);
      const short: string[] = [];
      ps.forEach((p, i) => {
        expect(p.durationS, `${name} ${p.uri}`).toBeLessThanOrEqual(partTargetS);
        const lastOfParent = ps[i + 1]?.msn !== p.msn;
        if (!p.independent && !lastOfParent && p.durationS < 0.85 * partTargetS) short.push(`${p.uri} ${p.durationS}`);
      });
      expect(short).toEqual([]);
      // 10 frames at 30 fps
      expect(ps.filter((p) => Math.abs(p.durationS - 1 / 3) < 0.002).length).toBeGreaterThanOrEqual(ps.length - 2);
    }
  });

  it("announces a part every third of a second", () => {
    const ps = of("240p").parts;
    // On average over the broadcast (FFmpeg keeps real time; a loaded machine delays some parts and then
    // delivers them close together, so single gaps say little about the cadence here).
    const mean = (ps.at(-1)!.at - ps[0]!.at) / (ps.length - 1);
    expect(mean).toBeGreaterThan(300);
    expect(mean).toBeLessThan(380);
    const gaps = ps.slice(1).map((p, i) => p.at - ps[i]!.at).sort((a, b) => a - b);
    console.log(`part announcements: mean gap ${mean.toFixed(0)} ms, median ${gaps[gaps.length >> 1]} ms, p95 ${gaps[Math.floor(gaps.length * 0.95)]} ms`);
  });

  it("marks INDEPENDENT exactly the parts that begin with a keyframe: every segment's first part", async () => {
    const dir = join(media.storeDir, keyBase, "360p");
    const { parts: ps, segments: ss } = of("360p");
    const work = await mkdtemp(join(tmpdir(), "pulsecast-ll-probe-"));
    try {
      for (const s of ss.slice(0, 3)) {
        const own = ps.filter((p) => p.msn === s.msn);
        // The decoder's view of the segment's parts in a row: which frames are keyframes, and in which part.
        const joined = join(work, `${s.msn}.m4s`);
        await writeFile(joined, Buffer.concat(await Promise.all(own.map((p) => readFile(join(dir, p.uri))))));
        const probed = await probeFmp4Segment(join(dir, own[0]!.map), joined);
        expect(probed.video).toHaveLength(own.length * 10);
        const keyParts = probed.video.flatMap((f, i) => (f.key ? [Math.floor(i / 10)] : []));
        expect(keyParts, `keyframes of ${s.uri} by part`).toEqual([0]);
        expect(probed.video[0]!.pictType).toBe("I");
        expect(own.map((p) => p.independent)).toEqual(own.map((_, i) => i === 0));
        // an independent part decodes on its own
        const alone = await probeFmp4Segment(join(dir, own[0]!.map), join(dir, own[0]!.uri));
        expect(alone.video).toHaveLength(10);
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  it("makes every segment the concatenation of its parts, and lists the same segments in the classic playlist", async () => {
    const dir = join(media.storeDir, keyBase, "240p");
    const { parts: ps, segments: ss } = of("240p");
    for (const s of ss) {
      const own = await Promise.all(ps.filter((p) => p.msn === s.msn).map((p) => readFile(join(dir, p.uri))));
      expect(Buffer.concat(own).equals(await readFile(join(dir, s.uri))), s.uri).toBe(true);
      expect(s.durationS).toBeCloseTo(ps.filter((p) => p.msn === s.msn).reduce((t, p) => t + p.durationS, 0), 5);
    }
    const classic = parsePlaylist(await readFile(join(dir, "index.m3u8"), "utf8"));
    expect(classic.endList).toBe(true);
    expect(classic.segments.map((x: { uri: string }) => x.uri)).toEqual(ss.map((s) => s.uri));
    expect(classic.segments.every((x: { programDateTime?: number }) => typeof x.programDateTime === "number")).toBe(true);
    const master = parsePlaylist(await readFile(join(media.storeDir, keyBase, "master-ll.m3u8"), "utf8"));
    expect(master.playlists.map((p: { uri: string }) => p.uri)).toEqual(["360p/ll.m3u8", "240p/ll.m3u8"]);
    expect(parsePlaylist(await readFile(join(media.storeDir, keyBase, "vod.m3u8"), "utf8")).playlists).toHaveLength(2);
  });

  it("stamps each segment's program date time from ingest, two seconds apart, in step across renditions", () => {
    const first = (name: string) => of(name).parts.filter((p) => p.index === 0).map((p) => p.programDateTimeMs!);
    const a = first("360p");
    const b = first("240p");
    expect(a).toEqual(b);
    for (let i = 1; i < a.length; i++) expect(a[i]! - a[i - 1]!).toBeCloseTo(2000, -1);
    // the first frame came in at the publish, which is a moment before the first part's announcement
    expect(of("360p").parts[0]!.at - a[0]!).toBeGreaterThan(0);
    expect(of("360p").parts[0]!.at - a[0]!).toBeLessThan(5000);
  });
});
