// Conformance of the edge's low-latency HLS to draft-pantos-hls-rfc8216bis (and Apple's authoring rules where they
// are stricter), in workerd, through the front Worker: a scripted packager stores parts and segments in the
// bucket and announces them over the signed route, viewers ask for playlists (with and without delivery
// directives) and parts through /play. One stream per test.
import { describe, expect, it } from "vitest";
import { parsePlaylist } from "../../../test/helpers/hls.ts";
import { playlistText, ScriptedPackager, untilWaiting } from "../../test/llhls.ts";
import { api, createStream, edge, env, errorCode, jwt, newUser, playbackToken } from "../../test/streams.ts";
import { advancePartLimit } from "./model.ts";
import { lowLatencyPlaylist, relayShard } from "./routes.ts";

const play = (path: string, headers: Record<string, string> = { "accept-encoding": "gzip" }) => edge(`/play/${path}`, { headers });

async function live(opts: ConstructorParameters<typeof ScriptedPackager>[1] = {}, policy: "public" | "signed" = "public") {
  const owner = newUser();
  const s = await createStream(owner, { playbackPolicy: policy, latencyMode: "low" });
  const pk = new ScriptedPackager(s.id, opts);
  await pk.start();
  return { s, pk, owner };
}

/** GET the playlist (with directives) and parse it with m3u8-parser, keeping the text too. */
async function get(pk: ScriptedPackager, query = "", rendition?: string) {
  const res = await play(`${pk.streamId}/${pk.playlist(rendition)}${query}`);
  const text = res.status === 200 ? await playlistText(res) : "";
  return { res, text, m: text ? parsePlaylist(text) : undefined };
}

/** A request that is parked in the stream's object; `done` says whether it has been answered yet. */
function held(pk: ScriptedPackager, query: string, rendition?: string) {
  const state = { done: false };
  const answer = get(pk, query, rendition).then((x) => ((state.done = true), x));
  return { state, answer };
}

describe("LL-HLS playlist (tags)", () => {
  it("lists parts, the preload hint, rendition reports and server control, gzipped, with PART-HOLD-BACK of 3 parts", async () => {
    const { pk } = await live();
    await pk.segments(1);
    await pk.part();
    await pk.part();
    const { res, text, m } = await get(pk);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/vnd.apple.mpegurl");
    expect(res.headers.get("content-encoding")).toBe("gzip");
    expect(res.headers.get("cache-control")).toBe("public, max-age=1");
    expect(res.headers.get("access-control-expose-headers")).toContain("Age");
    // Read with an independent parser.
    expect(m.serverControl).toMatchObject({ canBlockReload: true });
    expect(m.partInf.partTarget).toBe(0.337);
    expect(m.serverControl.partHoldBack).toBeGreaterThanOrEqual(3 * m.partInf.partTarget - 1e-9);
    expect(m.serverControl.holdBack).toBeGreaterThanOrEqual(3 * m.targetDuration);
    expect(m.segments).toHaveLength(1);
    expect(m.segments[0].parts).toHaveLength(6);
    expect(m.segments[0].uri).toBe("seg0.m4s");
    expect(m.segments[0].parts[0].independent).toBe(true);
    expect(m.segments[0].parts.slice(1).every((p: { independent?: boolean }) => !p.independent)).toBe(true);
    expect(m.segments[0].programDateTime).toBeTypeOf("number");
    expect(m.preloadSegment.parts.map((p: { uri: string }) => p.uri)).toEqual(["part6.m4s", "part7.m4s"]);
    expect(m.preloadSegment.preloadHints).toEqual([{ type: "PART", uri: "part8.m4s" }]);
    expect(m.renditionReports).toEqual([{ uri: "../240p/ll.m3u8", lastMsn: 1, lastPart: 1 }]);
    // every part within PART-TARGET and at 85% of it or more (independent and segment-ending parts excepted)
    for (const p of [...m.segments[0].parts, ...m.preloadSegment.parts]) expect(p.duration).toBeLessThanOrEqual(m.partInf.partTarget);
    expect(text).toMatch(/^#EXT-X-MAP:URI="e0-init\.mp4"$/m);
    expect(text).not.toContain("CAN-SKIP-UNTIL");
    expect(text).not.toContain("#EXT-X-ENDLIST");
    // without gzip in Accept-Encoding, plain text
    const plain = await play(`${pk.streamId}/${pk.playlist()}`, {});
    expect(plain.headers.get("content-encoding")).toBeNull();
    expect(await plain.text()).toBe(text);
  });

  it("renders each rendition once per change: every viewer of a version gets the same bytes", async () => {
    const { pk } = await live();
    await pk.part();
    const a = await get(pk);
    const b = await get(pk);
    expect(a.text).toBe(b.text);
    await pk.part();
    expect((await get(pk)).text).not.toBe(a.text);
  });

  it("lists parts only for the last three target durations, and keeps the segment window sliding", async () => {
    const { pk } = await live({ windowSegments: 4 });
    await pk.segments(6);
    await pk.part();
    const { m, text } = await get(pk);
    expect(m.mediaSequence).toBe(2);
    expect(m.segments.map((s: { uri: string }) => s.uri)).toEqual(["seg2.m4s", "seg3.m4s", "seg4.m4s", "seg5.m4s"]);
    // 3 x TARGETDURATION (6 s) from the end: seg3..seg5 plus the part in progress
    expect(m.segments.map((s: { parts?: unknown[] }) => s.parts?.length ?? 0)).toEqual([0, 6, 6, 6]);
    expect(text.match(/#EXT-X-PART:/g)).toHaveLength(19);
  });

  it("marks a new encoder run with a discontinuity and its own init segment", async () => {
    const { pk } = await live({ windowSegments: 3 });
    await pk.segments(1);
    pk.restart();
    await pk.segments(1);
    const { text } = await get(pk);
    expect(text).toMatch(/#EXT-X-MAP:URI="e0-init.mp4"[\s\S]*seg0\.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="e1-init.mp4"/);
    await pk.segments(3);
    const later = await get(pk);
    // the discontinuity scrolled out: counted instead
    expect(later.m.discontinuitySequence).toBe(1);
    expect(later.text).not.toContain("#EXT-X-DISCONTINUITY\n");
  });
});

describe("blocking playlist reload (6.2.5.2)", () => {
  it("holds _HLS_msn/_HLS_part until that part exists, then answers with it listed", async () => {
    const { pk } = await live();
    await pk.part();
    const req = held(pk, "?_HLS_msn=0&_HLS_part=2");
    await untilWaiting(pk.streamId);
    await pk.part(); // part 1: not yet
    expect(req.state.done).toBe(false);
    await pk.part(); // part 2
    const { res, m } = await req.answer;
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe(`public, max-age=${6 * 2}`);
    expect(m.preloadSegment.parts.map((p: { uri: string }) => p.uri)).toContain("part2.m4s");
  });

  it("answers at once when the part is already there, and for _HLS_msn alone once that segment is whole", async () => {
    const { pk } = await live();
    await pk.segments(1);
    await pk.part();
    expect((await get(pk, "?_HLS_msn=0&_HLS_part=3")).res.status).toBe(200);
    expect((await get(pk, "?_HLS_msn=0")).res.status).toBe(200);
    const whole = held(pk, "?_HLS_msn=1");
    await untilWaiting(pk.streamId);
    for (let i = 0; i < 5; i++) await pk.part();
    expect(whole.state.done).toBe(false); // segment 1 has its parts but is not finished
    await pk.endSegment();
    expect((await whole.answer).m.segments.at(-1).uri).toBe("seg1.m4s");
  });

  it("takes a part index past the segment's last part as the next segment's first part", async () => {
    const { pk } = await live();
    await pk.segments(1);
    const req = held(pk, "?_HLS_msn=0&_HLS_part=6");
    await untilWaiting(pk.streamId);
    expect(req.state.done).toBe(false);
    await pk.part();
    const { m } = await req.answer;
    expect(m.preloadSegment.parts.map((p: { uri: string }) => p.uri)).toEqual(["part6.m4s"]);
  });

  it("answers every request waiting for the same part from one render", async () => {
    const { pk } = await live();
    await pk.part();
    const reqs = Array.from({ length: 20 }, () => held(pk, "?_HLS_msn=0&_HLS_part=1"));
    await untilWaiting(pk.streamId, 20);
    await pk.part();
    const texts = await Promise.all(reqs.map(async (r) => (await r.answer).text));
    expect(new Set(texts).size).toBe(1);
    expect(texts[0]).toContain("part1.m4s");
  });

  it("refuses with 400 a request too far ahead, _HLS_part without _HLS_msn, and malformed directives", async () => {
    const { pk } = await live();
    await pk.segments(1);
    await pk.part();
    const code = async (q: string) => {
      const res = await play(`${pk.streamId}/${pk.playlist()}${q}`);
      return [res.status, res.status === 400 ? await errorCode(res) : ""];
    };
    // the last whole segment is 0: M up to 2 may wait, 3 is too far
    expect(await code("?_HLS_msn=3")).toEqual([400, "directive_too_far"]);
    expect(await code("?_HLS_part=1")).toEqual([400, "bad_directive"]);
    expect(await code("?_HLS_msn=-1")).toEqual([400, "bad_directive"]);
    expect(await code("?_HLS_msn=1&_HLS_part=x")).toEqual([400, "bad_directive"]);
    // more than the Advance Part Limit (3 / PART-TARGET parts) past the last part
    const limit = advancePartLimit(0.337);
    expect(await code(`?_HLS_msn=1&_HLS_part=${limit + 1}`)).toEqual([400, "directive_too_far"]);
    const ok = held(pk, `?_HLS_msn=1&_HLS_part=${limit}`);
    await untilWaiting(pk.streamId);
    expect(ok.state.done).toBe(false);
  });

  it("answers 503 once a request has waited three target durations", async () => {
    const { pk } = await live({ segmentTargetS: 1 });
    await pk.part();
    const started = Date.now();
    const { res } = await get(pk, "?_HLS_msn=0&_HLS_part=5");
    expect(res.status).toBe(503);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(3000);
    expect(waited).toBeLessThan(4500);
  });

  it("ignores directives once the playlist has ENDLIST (and drops the hint and server control)", async () => {
    const { pk } = await live();
    await pk.segments(2);
    const req = held(pk, "?_HLS_msn=2&_HLS_part=3");
    await untilWaiting(pk.streamId);
    await pk.end();
    const { m, text } = await req.answer;
    expect(m.endList).toBe(true);
    expect(text).not.toContain("PRELOAD-HINT");
    expect(text).not.toContain("CAN-BLOCK-RELOAD");
    // far ahead, answered at once after the end
    expect((await get(pk, "?_HLS_msn=50&_HLS_part=3")).res.status).toBe(200);
  });

  it("never offers delta updates: _HLS_skip gets the whole playlist", async () => {
    const { pk } = await live({ windowSegments: 20 });
    await pk.segments(8);
    const { text } = await get(pk, "?_HLS_msn=7&_HLS_skip=YES");
    expect(text).not.toContain("EXT-X-SKIP");
    expect(text).toContain("seg0.m4s");
  });
});

describe("parts, segments and access", () => {
  it("serves parts and segments through the Worker; a hinted part asked for early waits for it", async () => {
    const { pk } = await live();
    await pk.part();
    const part0 = await play(`${pk.streamId}/${pk.broadcastId}/360p/part0.m4s`, {});
    expect(part0.status).toBe(200);
    expect(part0.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(await part0.text()).toBe("360p part 0 of 0.0");
    // part1 is the preload hint: asked for before it exists, answered once it is stored and announced
    let done = false;
    const early = play(`${pk.streamId}/${pk.broadcastId}/360p/part1.m4s`, {}).then((r) => ((done = true), r));
    await expect.poll(async () => (await env.LowLatencyStream.getByName(pk.streamId).stats()).partWaits).toBe(1);
    expect(done).toBe(false);
    await pk.part();
    const res = await early;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("360p part 1 of 0.1");
    // a part beyond the hint is not going to appear now: 404 at once
    expect((await play(`${pk.streamId}/${pk.broadcastId}/360p/part9.m4s`, {})).status).toBe(404);
    await pk.segments(1);
    expect(await (await play(`${pk.streamId}/${pk.broadcastId}/240p/seg0.m4s`, {})).text()).toContain("240p part 0 of 0.0240p part 1");
  });

  it("plays a signed stream's playlists only with a viewer token in the path, as classic HLS", async () => {
    const { pk, s, owner } = await live({}, "signed");
    await pk.part();
    const byId = await play(`${s.id}/${pk.playlist()}`);
    expect(byId.status).toBe(403);
    expect(await errorCode(byId)).toBe("token_required");
    const { token } = await playbackToken(s.id, await jwt(owner));
    const res = await play(`${token}/${pk.playlist()}?_HLS_msn=0&_HLS_part=0`);
    expect(res.status).toBe(200);
    expect(await playlistText(res)).toContain("part0.m4s");
  });

  it("answers 404 for another broadcast or rendition, and for streams with nothing announced", async () => {
    const { pk, s } = await live();
    await pk.part();
    expect((await play(`${s.id}/brd_other/360p/ll.m3u8`)).status).toBe(404);
    expect((await play(`${s.id}/${pk.broadcastId}/1080p/ll.m3u8`)).status).toBe(404);
    const quiet = await createStream(newUser());
    expect((await play(`${quiet.id}/${pk.broadcastId}/360p/ll.m3u8`)).status).toBe(404);
  });

  it("a new broadcast of the stream replaces the old one's playlists", async () => {
    const { pk, s } = await live();
    await pk.part();
    const next = new ScriptedPackager(s.id);
    await next.start();
    await next.part();
    expect((await play(`${s.id}/${pk.playlist()}`)).status).toBe(404);
    expect((await get(next)).res.status).toBe(200);
  });
});

describe("announcements", () => {
  it("take only signed, well-formed announcements for the stream the path names", async () => {
    const { pk, s } = await live();
    const post = (body: string, headers: Record<string, string> = {}) => edge(`/hooks/llhls/${s.id}/announce`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
    expect((await post("{}")).status).toBe(401);
    const forged = await pk.announce([{ type: "end" }], { secret: "not-the-edge-ingress-secret-0123456789" });
    expect(forged.status).toBe(401);
    expect(await errorCode(forged)).toBe("bad_signature");
    const other = await pk.announce([{ type: "end" }], { streamId: "str_someone_else" });
    expect(other.status).toBe(400);
    expect(await errorCode(other)).toBe("stream_mismatch");
    const bad = await pk.announce([{ type: "part", rendition: "360p" } as never]);
    expect(bad.status).toBe(400);
    expect(await errorCode(bad)).toBe("invalid_announce");
    expect((await get(pk)).m.endList).toBeUndefined();
  });

  it("applies a repeated batch once, and refuses parts out of order", async () => {
    const { pk } = await live();
    await pk.part();
    const again = await pk.announce([{ type: "part", rendition: "360p", msn: 0, index: 0, uri: "part0.m4s", durationS: 0.333, independent: true, map: "e0-init.mp4" }]);
    expect(await again.json()).toMatchObject({ applied: 0, repeated: 1 });
    const gap = await pk.announce([{ type: "part", rendition: "360p", msn: 0, index: 3, uri: "part3.m4s", durationS: 0.333, independent: false, map: "e0-init.mp4" }]);
    expect((await gap.json()) as { refused: string[] }).toMatchObject({ refused: [expect.stringMatching(/before part 0.1/)] });
  });
});

describe("relays for a large audience (simulated)", () => {
  it("collapse hundreds of viewers' identical blocking requests into one per relay, answering all alike", async () => {
    const { pk, s } = await live();
    await pk.part();
    const relays = 4;
    const viewers = 400;
    const ask = (v: number) =>
      env.LowLatencyRelay.getByName(`${s.id}:${v % relays}`).playlist(s.id, { broadcastId: pk.broadcastId, rendition: "360p", directives: { msn: 0, part: 1 } }, { gzip: false });
    const answers = Array.from({ length: viewers }, (_, v) => ask(v));
    await untilWaiting(s.id, 1);
    await pk.part();
    const got = await Promise.all(answers);
    expect(got.every((a) => a.status === 200)).toBe(true);
    const texts = new Set(got.map((a) => new TextDecoder().decode(a.body)));
    expect(texts.size).toBe(1);
    expect([...texts][0]).toContain("part1.m4s");
    const origin = await env.LowLatencyStream.getByName(s.id).stats();
    // the stream's object saw one request per relay for this part, not one per viewer
    expect(origin.held).toBeLessThanOrEqual(relays);
    const perRelay = await Promise.all(Array.from({ length: relays }, (_, i) => env.LowLatencyRelay.getByName(`${s.id}:${i}`).stats()));
    expect(perRelay.reduce((t, r) => t + r.requests, 0)).toBe(viewers);
    expect(perRelay.every((r) => r.originRequests === 1)).toBe(true);
    // a late viewer asking for the same part is answered from the relay's copy, without the origin
    await ask(1);
    expect((await env.LowLatencyRelay.getByName(`${s.id}:1`).stats()).originRequests).toBe(1);
  });

  it("are where the front Worker sends viewers when LLHLS_RELAYS is set, a viewer always to the same one", async () => {
    const { pk, s } = await live();
    await pk.part();
    const withRelays = { ...env, LLHLS_RELAYS: "3" };
    const viewers = ["203.0.113.1", "203.0.113.2", "198.51.100.7", "2001:db8::1", "192.0.2.44", "192.0.2.45"];
    const answers = await Promise.all(viewers.map((viewer) => lowLatencyPlaylist(withRelays, s.id, { broadcastId: pk.broadcastId, rendition: "240p", directives: {} }, { gzip: false, viewer })));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const used = new Set(viewers.map((v) => relayShard(v, 3)));
    const stats = await Promise.all([0, 1, 2].map((i) => env.LowLatencyRelay.getByName(`${s.id}:${i}`).stats()));
    expect(stats.reduce((t, r) => t + r.requests, 0)).toBe(viewers.length);
    expect(stats.filter((r) => r.requests > 0)).toHaveLength(used.size);
    for (const v of viewers) expect(relayShard(v, 3)).toBe(relayShard(v, 3));
    // without relays the viewer goes straight to the stream's object
    const before = (await env.LowLatencyStream.getByName(s.id).stats()).playlistRequests;
    await lowLatencyPlaylist(env, s.id, { broadcastId: pk.broadcastId, rendition: "240p", directives: {} }, { gzip: false, viewer: viewers[0]! });
    expect((await env.LowLatencyStream.getByName(s.id).stats()).playlistRequests).toBe(before + 1);
  });
});

describe("streams API", () => {
  it("keeps latencyMode on the stream (also accepted as `latency`) and tells the media node in the key check", async () => {
    const owner = newUser();
    const s = await createStream(owner, { latency: "low" });
    const res = await api("GET", `/streams/${s.id}`, await jwt(owner));
    const view = (await res.json()) as { latencyMode: string; playback: { latency: string; lowLatencyUrl?: string } };
    expect(view.latencyMode).toBe("low");
    expect(view.playback.latency).toBe("low");
    expect(view.playback.lowLatencyUrl).toMatch(new RegExp(`/play/${s.id}/live-ll\\.m3u8$`));
    const check = await api("POST", "/internal/streams/key-check", env.INTERNAL_API_TOKEN!, { keys: [{ streamId: s.id, kv: 1 }] });
    expect(((await check.json()) as { results: unknown[] }).results).toEqual([{ streamId: s.id, ok: true, keyVersion: 1, record: true, latencyMode: "low" }]);
    const patched = await api("PATCH", `/streams/${s.id}`, await jwt(owner), { latency: "normal" });
    expect(((await patched.json()) as { latencyMode: string }).latencyMode).toBe("normal");
  });
});
