// The segment journal: one node publishes a broadcast (its playlists and journal pages into a real fs store),
// dies, and another node reads back every stored segment and continues the same playlists.

import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../log.ts";
import { FsObjectStore } from "../storage/fs-store.ts";
import type { Uploader } from "../storage/types.ts";
import type { Variant } from "../transcode/args.ts";
import { epochOf, journalPageKey, journalPageSize, lastMediaEnd, loadStoredVariant, parseMediaPlaylist } from "./journal.ts";
import { renderMediaPlaylist } from "./playlists.ts";
import { HlsPublisher } from "./publisher.ts";

const V240: Variant = { name: "240p", video: { name: "240p", mode: "encode", width: 426, height: 240, fps: 30, kbps: 400, maxKbps: 440, bufKbps: 800, level: "3.0" }, audio: { kbps: 64, channels: 2, sampleRate: 48_000 }, audioGroup: undefined, rendition: false };
const quiet = createLogger({ level: "error", sink: () => {} });
const KEY_BASE = "live/s1/brd_1";

/** Straight into the store, in call order per key (what ReliableUploader guarantees), nothing retried. */
function storeUploader(store: FsObjectStore): Uploader {
  const chains = new Map<string, Promise<void>>();
  const ordered = (key: string, put: () => Promise<void>) => {
    const next = (chains.get(key) ?? Promise.resolve()).then(put);
    chains.set(key, next.catch(() => undefined));
    return next;
  };
  return {
    upload: (key: string, path: string) => ordered(key, () => store.put(key, { file: path })),
    uploadBody: (key: string, body: string | Uint8Array) => ordered(key, () => store.put(key, body)),
    stats: () => ({ pending: 0 }),
  } as unknown as Uploader;
}

/** One encoder run writing `n` one-second segments, read by `hls`, then ended. */
async function run(hls: HlsPublisher, dir: string, epoch: number, n: number, startedAtMs: number) {
  const runDir = join(dir, `e${epoch}`);
  const variantDir = join(runDir, "240p");
  await mkdir(variantDir, { recursive: true });
  await writeFile(join(variantDir, "init_0.mp4"), `init-${epoch}`);
  const lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:1", "#EXT-X-MEDIA-SEQUENCE:0", '#EXT-X-MAP:URI="init_0.mp4"'];
  for (let i = 0; i < n; i++) {
    lines.push("#EXTINF:1.000000,", `seg_${i}.m4s`);
    await writeFile(join(variantDir, `seg_${i}.m4s`), `e${epoch}-${i}`);
  }
  await writeFile(join(variantDir, "index.m3u8"), lines.join("\n") + "\n");
  const r = { epoch, dir: runDir, startedAtMs };
  await hls.begin(r);
  await hls.end(r);
}

describe("segment journal", () => {
  let dir: string;
  let store: FsObjectStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "pulsecast-journal-"));
    store = new FsObjectStore({ dir: join(dir, "store"), publicBaseUrl: "http://media.test/media" });
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it("sizes pages below the live window (so pages plus the window always hold everything)", () => {
    expect(journalPageSize(15)).toBe(14);
    expect(journalPageSize(3)).toBe(2);
    expect(journalPageSize(10_000)).toBe(50);
  });

  it("gives a continuing node every stored segment, and its playlists go on after them", async () => {
    const window = 4;
    const page = journalPageSize(window);
    const a = new HlsPublisher({ uploader: storeUploader(store), keyBase: KEY_BASE, variants: [V240], segmentS: 1, liveWindow: window, journal: { pageSize: page }, log: quiet });
    const t0 = Date.UTC(2026, 0, 1);
    await run(a, join(dir, "a"), 0, 6, t0);
    await run(a, join(dir, "a"), 1, 5, t0 + 7000);
    await a.settle();
    // Node A dies here: no ENDLIST, no VOD. Its live playlist shows only the last 4 segments...
    const live = parseMediaPlaylist(Buffer.from((await store.get(`${KEY_BASE}/240p/index.m3u8`))!.body).toString("utf8"));
    expect(live.mediaSequence).toBe(7);
    expect(live.segments).toHaveLength(4);
    expect(live.ended).toBe(false);
    // ...and the journal pages hold what slid out of it.
    expect(await store.get(journalPageKey(KEY_BASE, "240p", 0))).not.toBeNull();
    const stored = (await loadStoredVariant(store, KEY_BASE, "240p", page))!;
    expect(stored.missing).toBe(0);
    expect(stored.segments.map((s) => s.uri)).toEqual([...[0, 1, 2, 3, 4, 5].map((i) => `e0-${i}.m4s`), ...[0, 1, 2, 3, 4].map((i) => `e1-${i}.m4s`)]);
    expect(stored.segments.map((s) => s.discontinuity)).toEqual([false, false, false, false, false, false, true, false, false, false, false]);
    expect(stored.segments[6]!.map).toBe("e1-init.mp4");
    expect(lastMediaEnd([stored.segments])).toBe(t0 + 7000 + 5000);
    expect(Math.max(...stored.segments.map((s) => epochOf(s.uri)!))).toBe(1);

    // Node B continues from there, with its runs numbered after A's.
    const b = new HlsPublisher({ uploader: storeUploader(store), keyBase: KEY_BASE, variants: [V240], segmentS: 1, liveWindow: window, journal: { pageSize: page }, seed: new Map([["240p", stored.segments]]), log: quiet });
    await run(b, join(dir, "b"), 2, 3, t0 + 20_000);
    const result = await b.finish({ vod: true });
    expect(result.segments).toBe(14);
    expect(result.durationS).toBe(14);
    const after = parseMediaPlaylist(Buffer.from((await store.get(`${KEY_BASE}/240p/index.m3u8`))!.body).toString("utf8"));
    expect(after.mediaSequence).toBe(10); // 14 segments, a window of 4: the numbering went on
    expect(after.ended).toBe(true);
    expect(after.segments.map((s) => s.uri)).toEqual(["e1-4.m4s", "e2-0.m4s", "e2-1.m4s", "e2-2.m4s"]);
    expect(after.segments[1]!.discontinuity).toBe(true);
    const vod = parseMediaPlaylist(Buffer.from((await store.get(`${KEY_BASE}/240p/vod.m3u8`))!.body).toString("utf8"));
    expect(vod.segments).toHaveLength(14);
    expect(vod.segments.filter((s) => s.discontinuity).map((s) => s.uri)).toEqual(["e1-0.m4s", "e2-0.m4s"]);
    // every segment a playlist lists is stored
    for (const s of vod.segments) expect(await store.head(`${KEY_BASE}/240p/${s.uri}`), s.uri).not.toBeNull();
  });

  it("reads back our own playlists exactly", () => {
    const segments = [
      { uri: "e0-0.m4s", durationS: 2, map: "e0-init.mp4", discontinuity: false, programDateTimeMs: 1_000 },
      { uri: "e1-0.m4s", durationS: 1.5, map: "e1-init.mp4", discontinuity: true, programDateTimeMs: 9_000 },
    ];
    const parsed = parseMediaPlaylist(renderMediaPlaylist(segments, { targetS: 2, kind: "live", window: 10, ended: false }));
    expect(parsed).toEqual({ mediaSequence: 0, segments, ended: false });
  });
});
