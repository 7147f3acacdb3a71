import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { utf8 } from "../../../shared/encoding.ts";
import { mintHs256, mintUnsigned } from "../../../test/helpers/jwt.ts";
import { api, createStream, edge, env, errorCode, jwt, newUser, playbackToken, type StreamView } from "../../test/streams.ts";
import { PLAYBACK_AUDIENCE } from "./tokens.ts";

const MASTER = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720\nbrd_1/720p/index.m3u8\n";
const MEDIA = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.0,\nseg_1.m4s\n";
const VOD = MEDIA + "#EXT-X-ENDLIST\n";
const SEGMENT = new Uint8Array(4096).map((_, i) => i % 251);

/** A stream with a small ladder stored in the R2 bucket the way a media node stores it. */
async function streamWithMedia(policy: "public" | "signed", owner = newUser()): Promise<StreamView & { owner: string }> {
  const s = await createStream(owner, { playbackPolicy: policy });
  const root = `live/${s.id}`;
  await env.MEDIA!.put(`${root}/live.m3u8`, MASTER);
  await env.MEDIA!.put(`${root}/brd_1/720p/index.m3u8`, MEDIA);
  await env.MEDIA!.put(`${root}/brd_1/720p/init.mp4`, new Uint8Array([0, 0, 0, 8, 102, 116, 121, 112]));
  await env.MEDIA!.put(`${root}/brd_1/720p/seg_1.m4s`, SEGMENT);
  await env.MEDIA!.put(`${root}/brd_1/vod.m3u8`, VOD);
  await env.MEDIA!.put(`${root}/brd_1/storyboard.vtt`, "WEBVTT\n");
  await env.MEDIA!.put(`${root}/brd_1/poster.jpg`, new Uint8Array([0xff, 0xd8, 0xff]));
  return { ...s, owner };
}

const play = (path: string, headers: Record<string, string> = {}, method = "GET") => edge(`/play/${path}`, { method, headers });

async function tokenFor(s: { id: string; owner: string }, body: Record<string, unknown> = {}): Promise<string> {
  return (await playbackToken(s.id, await jwt(s.owner), body)).token;
}

/** A viewer token made by hand (to craft bad ones). */
function handToken(opts: { sub: string; kid?: string; secret?: string; aud?: string; exp?: number; nbf?: number; alg?: string }): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ nbf: opts.nbf ?? now })
    .setProtectedHeader({ alg: opts.alg ?? "HS256", kid: opts.kid ?? "k2" })
    .setSubject(opts.sub)
    .setAudience(opts.aud ?? PLAYBACK_AUDIENCE)
    .setExpirationTime(opts.exp ?? now + 600)
    .sign(utf8(opts.secret ?? "test-playback-key-two-0123456789abcdef"));
}

describe("public playback by id", () => {
  it("serves playlists, init segments, segments, captions and images with the right types and caching", async () => {
    const s = await streamWithMedia("public");
    const cases: [string, string, string][] = [
      ["live.m3u8", "application/vnd.apple.mpegurl", "public, max-age=1"],
      ["brd_1/720p/index.m3u8", "application/vnd.apple.mpegurl", "public, max-age=1"],
      ["brd_1/vod.m3u8", "application/vnd.apple.mpegurl", "public, max-age=300"],
      ["brd_1/720p/init.mp4", "video/mp4", "public, max-age=31536000, immutable"],
      ["brd_1/720p/seg_1.m4s", "video/iso.segment", "public, max-age=31536000, immutable"],
      ["brd_1/storyboard.vtt", "text/vtt; charset=utf-8", "public, max-age=60"],
      ["brd_1/poster.jpg", "image/jpeg", "public, max-age=60"],
    ];
    for (const [path, type, cache] of cases) {
      const res = await play(`${s.id}/${path}`, { origin: "https://app.example" });
      expect(res.status, path).toBe(200);
      expect(res.headers.get("content-type"), path).toBe(type);
      expect(res.headers.get("cache-control"), path).toBe(cache);
      expect(res.headers.get("access-control-allow-origin"), path).toBe("*");
      expect(res.headers.get("access-control-expose-headers"), path).toContain("Content-Range");
      expect(res.headers.get("etag"), path).toMatch(/^"/);
    }
    const master = await play(`${s.id}/live.m3u8`);
    expect(await master.text()).toBe(MASTER);
  });

  it("caches without the token, answers Range (206/416), If-None-Match (304) and HEAD", async () => {
    const s = await streamWithMedia("public");
    const path = `${s.id}/brd_1/720p/seg_1.m4s`;
    const first = await play(path);
    expect(first.headers.get("x-pulsecast-cache")).toBe("miss");
    expect(new Uint8Array(await first.arrayBuffer())).toEqual(SEGMENT);
    const etag = first.headers.get("etag")!;
    // Served again from the isolate's memory, the same bytes every time (the buffer is never handed away).
    for (let i = 0; i < 3; i++) {
      const again = await play(path);
      expect(again.headers.get("x-pulsecast-cache")).toBe("memory");
      expect(new Uint8Array(await again.arrayBuffer())).toEqual(SEGMENT);
    }

    const ranged = await play(path, { range: "bytes=100-199" });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get("content-range")).toBe(`bytes 100-199/${SEGMENT.length}`);
    expect(ranged.headers.get("content-length")).toBe("100");
    expect(new Uint8Array(await ranged.arrayBuffer())).toEqual(SEGMENT.slice(100, 200));
    const suffix = await play(path, { range: "bytes=-10" });
    expect(suffix.status).toBe(206);
    expect(new Uint8Array(await suffix.arrayBuffer())).toEqual(SEGMENT.slice(-10));
    const open = await play(path, { range: "bytes=4000-" });
    expect(open.headers.get("content-range")).toBe(`bytes 4000-4095/${SEGMENT.length}`);
    await open.arrayBuffer();
    const beyond = await play(path, { range: "bytes=5000-6000" });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get("content-range")).toBe(`bytes */${SEGMENT.length}`);
    expect(await errorCode(beyond)).toBe("range_not_satisfiable");

    const same = await play(path, { "if-none-match": etag });
    expect(same.status).toBe(304);
    expect(await same.text()).toBe("");
    const other = await play(path, { "if-none-match": '"something-else"' });
    expect(other.status).toBe(200);
    await other.arrayBuffer();
    const head = await play(path, {}, "HEAD");
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(SEGMENT.length));
    expect(await head.text()).toBe("");
  });

  it("answers a CORS preflight for Range requests", async () => {
    const s = await streamWithMedia("public");
    const res = await edge(`/play/${s.id}/live.m3u8`, { method: "OPTIONS", headers: { origin: "https://app.example", "access-control-request-method": "GET", "access-control-request-headers": "range" } });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-headers")).toContain("Range");
    expect(res.headers.get("access-control-allow-methods")).toContain("GET");
  });

  it("collapses concurrent misses onto one source fetch", async () => {
    const s = await streamWithMedia("public");
    const path = `${s.id}/brd_1/720p/seg_1.m4s`;
    const all = await Promise.all(Array.from({ length: 20 }, () => play(path)));
    const outcomes = all.map((r) => r.headers.get("x-pulsecast-cache"));
    expect(outcomes.filter((o) => o === "miss")).toHaveLength(1);
    expect(outcomes.every((o) => o === "miss" || o === "coalesced" || o === "hit" || o === "memory")).toBe(true);
    for (const r of all) expect(new Uint8Array(await r.arrayBuffer())).toEqual(SEGMENT);
  });

  it("answers 404 JSON for a file that is not there, and does not cache the miss", async () => {
    const s = await streamWithMedia("public");
    const res = await play(`${s.id}/brd_1/720p/seg_2.m4s`);
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe("not_found");
    await env.MEDIA!.put(`live/${s.id}/brd_1/720p/seg_2.m4s`, SEGMENT);
    expect((await play(`${s.id}/brd_1/720p/seg_2.m4s`)).status).toBe(200);
  });

  it("refuses a signed stream's id, an unknown id and a disabled stream, with no media byte", async () => {
    const signed = await streamWithMedia("signed");
    const res = await play(`${signed.id}/live.m3u8`);
    expect(res.status).toBe(403);
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(await errorCode(res)).toBe("token_required");
    const unknown = await play("str_unknown/live.m3u8");
    expect(unknown.status).toBe(404);
    expect(await errorCode(unknown)).toBe("stream_not_found");
    const pub = await streamWithMedia("public");
    expect((await api("POST", `/streams/${pub.id}/disable`, await jwt(pub.owner))).status).toBe(200);
    const off = await play(`${pub.id}/live.m3u8`);
    expect(off.status).toBe(403);
    expect(await errorCode(off)).toBe("stream_unavailable");
  });
});

describe("signed playback with the token in the path", () => {
  it("plays the master and, through relative URIs, every child with the same token prefix", async () => {
    const s = await streamWithMedia("signed");
    const token = await tokenFor(s);
    const master = await play(`${token}/live.m3u8`);
    expect(master.status).toBe(200);
    const child = (await master.text()).split("\n").find((l) => l.endsWith(".m3u8"))!;
    const media = await play(`${token}/${child}`);
    expect(media.status).toBe(200);
    expect(await media.text()).toBe(MEDIA);
    const seg = await play(`${token}/brd_1/720p/seg_1.m4s`);
    expect(new Uint8Array(await seg.arrayBuffer())).toEqual(SEGMENT);
  });

  it("shares one cache entry between viewers with different tokens", async () => {
    const s = await streamWithMedia("signed");
    const a = await tokenFor(s, { viewerId: "a" });
    const b = await tokenFor(s, { viewerId: "b" });
    expect(a).not.toBe(b);
    const first = await play(`${a}/brd_1/720p/seg_1.m4s`);
    await first.arrayBuffer();
    const second = await play(`${b}/brd_1/720p/seg_1.m4s`);
    expect(second.headers.get("x-pulsecast-cache")).toBe("memory");
    await second.arrayBuffer();
  });

  it("accepts a token signed with the previous key (rotation) and refuses an unknown kid", async () => {
    const s = await streamWithMedia("signed");
    const old = await handToken({ sub: s.id, kid: "k1", secret: "test-playback-key-one-0123456789abcdef" });
    expect((await play(`${old}/live.m3u8`)).status).toBe(200);
    const retired = await handToken({ sub: s.id, kid: "k0", secret: "test-playback-key-zero-0123456789abcdef" });
    const res = await play(`${retired}/live.m3u8`);
    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe("token_unknown_kid");
  });

  it("refuses every bad token with 401/403 JSON and never a media byte", async () => {
    const s = await streamWithMedia("signed");
    const good = await tokenFor(s);
    const now = Math.floor(Date.now() / 1000);
    const [head, body, sig] = good.split(".") as [string, string, string];
    const otherBody = btoa(JSON.stringify({ sub: "str_other", aud: PLAYBACK_AUDIENCE, exp: now + 600, nbf: now })).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
    const flipped = sig.slice(0, -2) + (sig.at(-2) === "A" ? "B" : "A") + sig.at(-1);
    const cases: [string, string, number, string][] = [
      ["expired", await handToken({ sub: s.id, exp: now - 60 }), 401, "token_expired"],
      ["not yet valid", await handToken({ sub: s.id, nbf: now + 600 }), 401, "token_not_yet_valid"],
      ["a tampered payload", `${head}.${otherBody}.${sig}`, 401, "token_invalid"],
      ["a tampered signature", `${head}.${body}.${flipped}`, 401, "token_invalid"],
      ["a wrong key under a known kid", await handToken({ sub: s.id, secret: "attacker-secret-0123456789abcdef0123" }), 401, "token_invalid"],
      ["alg none", mintUnsigned({ sub: s.id, claims: { aud: PLAYBACK_AUDIENCE, nbf: now } }), 401, "token_bad_algorithm"],
      ["a client JWT (wrong audience, no kid)", await mintHs256(env.JWT_SECRET!, { sub: s.id }), 401, "token_unknown_kid"],
      ["another audience", await handToken({ sub: s.id, aud: "pulsecast:other" }), 401, "token_invalid"],
      ["garbage with dots", "aaa.bbb.ccc", 401, "token_malformed"],
    ];
    for (const [what, token, status, code] of cases) {
      const res = await play(`${token}/brd_1/720p/seg_1.m4s`);
      expect(res.status, what).toBe(status);
      expect(res.headers.get("content-type"), what).toContain("application/json");
      expect(await errorCode(res), what).toBe(code);
    }
  });

  it("a token for stream A never reaches stream B", async () => {
    const a = await streamWithMedia("signed");
    const b = await streamWithMedia("signed");
    await env.MEDIA!.put(`live/${b.id}/brd_b/720p/seg_1.m4s`, new Uint8Array([9, 9, 9]));
    const tokenA = await tokenFor(a);
    // The token names its stream: paths under it are A's objects only.
    const notThere = await play(`${tokenA}/brd_b/720p/seg_1.m4s`);
    expect(notThere.status).toBe(404);
    // Dot segments are resolved before routing: this becomes B by id, which needs a token of its own.
    const climbed = await play(`${tokenA}/%2e%2e/${b.id}/brd_b/720p/seg_1.m4s`);
    expect(climbed.status).toBe(403);
    expect(await errorCode(climbed)).toBe("token_required");
    const climbed2 = await play(`${tokenA}/../${b.id}/live.m3u8`);
    expect(climbed2.status).toBe(403);
    await climbed2.arrayBuffer();
  });

  it("refuses path tricks: encoded slashes, double encoding, dot-led and empty segments, other file types", async () => {
    const s = await streamWithMedia("public");
    const token = await tokenFor(s);
    const cases: [string, number, string][] = [
      [`${s.id}/brd_1%2F720p%2Fseg_1.m4s`, 400, "bad_path"],
      [`${s.id}/brd_1%2f720p/seg_1.m4s`, 400, "bad_path"],
      [`${s.id}/%252e%252e/secret.m3u8`, 400, "bad_path"],
      [`${s.id}/brd_1%252F720p/seg_1.m4s`, 400, "bad_path"],
      [`${token}/..%2F..%2Fother/live.m3u8`, 400, "bad_path"],
      [`${s.id}/.hidden.m3u8`, 400, "bad_path"],
      [`${s.id}/brd_1//seg_1.m4s`, 400, "bad_path"],
      [`${s.id}/brd_1/.seg_1.m4s.meta.json`, 400, "bad_path"],
      [`${s.id}/brd_1/720p/seg_1.m4s.json`, 404, "not_found"],
      [`${s.id}/live`, 404, "not_found"],
      [`${s.id}`, 404, "not_found"],
      [`bad%2Fid/live.m3u8`, 400, "bad_path"],
    ];
    for (const [path, status, code] of cases) {
      const res = await play(path);
      expect(res.status, path).toBe(status);
      expect(await errorCode(res), path).toBe(code);
    }
  });

  it("stops playing when the stream is disabled or deleted", async () => {
    const s = await streamWithMedia("signed");
    const token = await tokenFor(s);
    expect((await play(`${token}/live.m3u8`)).status).toBe(200);
    await api("POST", `/streams/${s.id}/disable`, await jwt(s.owner));
    const off = await play(`${token}/live.m3u8`);
    expect(off.status).toBe(403);
    expect(await errorCode(off)).toBe("stream_unavailable");
    await api("POST", `/streams/${s.id}/enable`, await jwt(s.owner));
    expect((await play(`${token}/live.m3u8`)).status).toBe(200);
    await api("DELETE", `/streams/${s.id}`, await jwt(s.owner));
    const gone = await play(`${token}/live.m3u8`);
    expect(gone.status).toBe(403);
    expect(await errorCode(gone)).toBe("stream_unavailable");
  });

  it("honours not-before from the mint request", async () => {
    const s = await streamWithMedia("signed");
    const later = await tokenFor(s, { notBefore: Math.floor(Date.now() / 1000) + 3600 });
    const res = await play(`${later}/live.m3u8`);
    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe("token_not_yet_valid");
  });
});
