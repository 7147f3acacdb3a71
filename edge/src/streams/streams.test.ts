import { describe, expect, it } from "vitest";
import { makeEvent } from "../../../shared/envelope.ts";
import { signWebhook } from "../../../shared/signing/webhooks.ts";
import { verifyPublishToken } from "../../../shared/tokens/publish-token.ts";
import { join } from "../../test/clients.ts";
import { api, createStream, edge, env, errorCode, jwt, keyCheck, newUser, playbackToken, type StreamView } from "../../test/streams.ts";

const json = async <T = StreamView>(res: Response) => (await res.json()) as T;

describe("POST /streams", () => {
  it("creates a live input owned by the caller, with an RTMP URL, an OBS key and a public playback URL", async () => {
    const owner = newUser("owner");
    const s = await createStream(owner, { title: "Launch" });
    expect(s.id).toMatch(/^str_[0-9a-z]{26}$/);
    expect(s.roomId).toBe(s.id);
    expect(s.title).toBe("Launch");
    expect(s.status).toBe("idle");
    expect(s.rtmp!.url).toBe(env.RTMP_BASE_URL);
    expect(s.obs).toEqual({ server: s.rtmp!.url, key: s.rtmp!.streamKey });
    expect(s.playback).toEqual({ policy: "public", playbackId: s.id, latency: "normal", url: `${env.PLAYBACK_BASE_URL}/play/${s.id}/live.m3u8` });
    expect(s.keyVersion).toBe(1);
    // The stream key is `<id>?token=<publish token>` that a media node verifies offline, carrying the key version.
    const [name, query] = s.rtmp!.streamKey.split("?token=") as [string, string];
    expect(name).toBe(s.id);
    const verdict = await verifyPublishToken(env.PUBLISH_TOKEN_SECRET!, query, { streamId: s.id, app: "live" });
    expect(verdict.ok && verdict.claims).toMatchObject({ sid: s.id, kv: 1, sub: owner, room: s.id });
    expect(verdict.ok && verdict.claims.rec).toBeUndefined();
  });

  it("takes the options: signed playback, no recording, low latency, a room the token grants", async () => {
    const s = await createStream(newUser(), { playbackPolicy: "signed", record: false, latencyMode: "low", roomId: "studio-7" }, ["studio-*"]);
    expect(s.playback).toEqual({ policy: "signed", playbackId: s.id, latency: "low" });
    expect(s).toMatchObject({ record: false, latencyMode: "low", roomId: "studio-7" });
  });

  it("refuses a room the token does not grant by name, and another stream's room: a stream cannot take over a room", async () => {
    const victim = await createStream(newUser("victim"));
    const cases: [string, string, string[] | undefined][] = [
      ["a token with no rooms claim (it may enter any room, but grants none)", "lobby", undefined],
      ["a token granting other rooms", "lobby", ["studio-*"]],
      ["another stream's room, even when the token's pattern covers it", victim.id, ["str_*"]],
    ];
    for (const [what, roomId, rooms] of cases) {
      const owner = newUser("taker");
      const res = await api("POST", "/streams", await jwt(owner, "broadcaster", rooms), { roomId });
      expect(res.status, what).toBe(403);
      expect(await errorCode(res), what).toBe("room_not_granted");
      const list = await json<{ streams: unknown[] }>(await api("GET", "/streams", await jwt(owner)));
      expect(list.streams, what).toEqual([]);
    }
  });

  it.each([
    ["no token", null, 401, "missing_token"],
    ["a viewer's token", "member", 403, "broadcaster_role_required"],
  ])("refuses %s", async (_what, role, status, code) => {
    const res = await api("POST", "/streams", role ? await jwt(newUser(), role) : null, {});
    expect(res.status).toBe(status);
    expect(await errorCode(res)).toBe(code);
  });

  it.each([
    ["not JSON", "{oops", "invalid_json"],
    ["an unknown field", { colour: "red" }, "invalid_body"],
    ["a bad policy", { playbackPolicy: "private" }, "invalid_body"],
    ["a bad latency mode", { latencyMode: "ultra" }, "invalid_body"],
    ["a bad room id", { roomId: "../x" }, "invalid_body"],
    ["an empty title", { title: "  " }, "invalid_body"],
  ])("refuses a body with %s (400) and creates nothing", async (_what, body, code) => {
    const owner = newUser();
    const res = await api("POST", "/streams", await jwt(owner), body);
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe(code);
    const list = await json<{ streams: unknown[] }>(await api("GET", "/streams", await jwt(owner)));
    expect(list.streams).toEqual([]);
  });
});

describe("GET /streams and /streams/:id", () => {
  it("lists the caller's own streams, newest first, in pages", async () => {
    const owner = newUser("lister");
    const made = [];
    for (let i = 0; i < 3; i++) made.push(await createStream(owner, { title: `s${i}` }));
    await createStream(newUser("other"));
    const token = await jwt(owner);
    const first = await json<{ streams: StreamView[]; next?: string }>(await api("GET", "/streams?limit=2", token));
    expect(first.streams.map((s) => s.title)).toEqual(["s2", "s1"]);
    expect(first.streams[0]!.rtmp).toBeDefined();
    const second = await json<{ streams: StreamView[]; next?: string }>(await api("GET", `/streams?limit=2&cursor=${first.next}`, token));
    expect(second.streams.map((s) => s.title)).toEqual(["s0"]);
    expect(second.next).toBeUndefined();
    for (const bad of ["limit=0", "limit=101", "limit=x", "cursor=../x"]) {
      const res = await api("GET", `/streams?${bad}`, token);
      expect(res.status, bad).toBe(400);
    }
  });

  it("shows the owner everything and anyone else only the public fields", async () => {
    const owner = newUser();
    const s = await createStream(owner, { playbackPolicy: "signed" });
    const mine = await json(await api("GET", `/streams/${s.id}`, await jwt(owner)));
    expect(mine.rtmp?.streamKey).toBe(s.rtmp!.streamKey);
    const theirs = await json<Record<string, unknown>>(await api("GET", `/streams/${s.id}`, await jwt(newUser(), "member")));
    expect(theirs).toMatchObject({ id: s.id, status: "idle", playback: { policy: "signed", playbackId: s.id }, viewers: 0 });
    for (const secret of ["rtmp", "obs", "keyVersion", "record", "lastBroadcast"]) expect(theirs, secret).not.toHaveProperty(secret);
  });

  it("counts viewers from the room's presence", async () => {
    const s = await createStream(newUser());
    const viewer = await join(s.roomId, newUser("viewer"));
    const seen = await json(await api("GET", `/streams/${s.id}`, await jwt(newUser(), "member")));
    expect(seen.viewers).toBe(1);
    viewer.close();
  });

  it("answers 404 for unknown and malformed ids", async () => {
    const token = await jwt(newUser());
    for (const id of ["str_nope", "a..b", "a%2Fb"]) {
      const res = await api("GET", `/streams/${id}`, token);
      expect(res.status, id).toBe(404);
      expect(await errorCode(res)).toBe("stream_not_found");
    }
  });
});

describe("key rotation, disable, enable, delete", () => {
  it("rotation revokes the old key version at once", async () => {
    const owner = newUser();
    const s = await createStream(owner);
    const rotated = await json(await api("POST", `/streams/${s.id}/key`, await jwt(owner)));
    expect(rotated.keyVersion).toBe(2);
    expect(rotated.rtmp!.streamKey).not.toBe(s.rtmp!.streamKey);
    const checked = await json<{ results: unknown[] }>(await keyCheck([{ streamId: s.id, kv: 1 }, { streamId: s.id, kv: 2 }]));
    expect(checked.results).toEqual([
      { streamId: s.id, ok: false, reason: "revoked-key", keyVersion: 2 },
      { streamId: s.id, ok: true, keyVersion: 2, record: true, latencyMode: "normal" },
    ]);
  });

  it("disable refuses every key and shows `disabled`; enable restores the current key", async () => {
    const owner = newUser();
    const s = await createStream(owner);
    const token = await jwt(owner);
    const disabled = await json(await api("POST", `/streams/${s.id}/disable`, token));
    expect(disabled.status).toBe("disabled");
    expect(disabled.playback.url).toBeUndefined();
    expect((await json<{ results: unknown[] }>(await keyCheck([{ streamId: s.id, kv: 1 }]))).results).toEqual([{ streamId: s.id, ok: false, reason: "disabled", keyVersion: 1 }]);
    const enabled = await json(await api("POST", `/streams/${s.id}/enable`, token));
    expect(enabled.status).toBe("idle");
    expect((await json<{ results: unknown[] }>(await keyCheck([{ streamId: s.id, kv: 1 }]))).results).toEqual([{ streamId: s.id, ok: true, keyVersion: 1, record: true, latencyMode: "normal" }]);
  });

  it("delete removes the stream from its owner's list and refuses its keys for good", async () => {
    const owner = newUser();
    const s = await createStream(owner);
    const token = await jwt(owner);
    expect((await api("DELETE", `/streams/${s.id}`, token)).status).toBe(204);
    expect((await api("GET", `/streams/${s.id}`, token)).status).toBe(404);
    expect((await json<{ streams: unknown[] }>(await api("GET", "/streams", token))).streams).toEqual([]);
    expect((await json<{ results: unknown[] }>(await keyCheck([{ streamId: s.id, kv: 1 }]))).results).toEqual([{ streamId: s.id, ok: false, reason: "deleted" }]);
    expect((await api("DELETE", `/streams/${s.id}`, token)).status).toBe(404);
  });

  it("only the owner may change a stream", async () => {
    const s = await createStream(newUser());
    const stranger = await jwt(newUser(), "broadcaster");
    for (const [method, path] of [["POST", "key"], ["POST", "disable"], ["POST", "enable"], ["POST", "playback-tokens"], ["PATCH", ""], ["DELETE", ""]] as const) {
      const res = await api(method, `/streams/${s.id}${path ? `/${path}` : ""}`, stranger, method === "PATCH" ? { title: "mine now" } : undefined);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(await errorCode(res)).toBe("not_stream_owner");
    }
    expect((await keyCheck([{ streamId: s.id, kv: 1 }]).then((r) => json<{ results: { ok: boolean }[] }>(r))).results[0]!.ok).toBe(true);
  });

  it("PATCH changes the playback policy and other settings", async () => {
    const owner = newUser();
    const s = await createStream(owner);
    const res = await api("PATCH", `/streams/${s.id}`, await jwt(owner), { playbackPolicy: "signed", title: null, record: false });
    const after = await json(res);
    // The key does not change with the settings; media nodes learn `record` from the key check.
    expect(after.rtmp!.streamKey).toBe(s.rtmp!.streamKey);
    expect((await json<{ results: unknown[] }>(await keyCheck([{ streamId: s.id, kv: 1 }]))).results).toEqual([{ streamId: s.id, ok: true, keyVersion: 1, record: false, latencyMode: "normal" }]);
    expect(after.playback).toEqual({ policy: "signed", playbackId: s.id, latency: "normal" });
    expect(after.title).toBeNull();
    const bad = await api("PATCH", `/streams/${s.id}`, await jwt(owner), { playbackPolicy: "nope" });
    expect(bad.status).toBe(400);
  });
});

describe("POST /internal/streams/key-check", () => {
  it.each([
    ["no token", null],
    ["a client JWT", "jwt"],
  ])("refuses %s", async (_what, token) => {
    const res = await keyCheck([{ streamId: "str_x", kv: 1 }], token === "jwt" ? await jwt(newUser()) : token);
    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe("invalid_internal_token");
  });

  it("refuses malformed bodies and answers unknown streams", async () => {
    for (const body of ["{", JSON.stringify({ keys: [] }), JSON.stringify({ keys: [{ streamId: "x", kv: -1 }] })]) {
      const res = await api("POST", "/internal/streams/key-check", env.INTERNAL_API_TOKEN!, body);
      expect(res.status, body).toBe(400);
    }
    const res = await json<{ results: unknown[] }>(await keyCheck([{ streamId: "str_unknown", kv: 1 }, { streamId: "../x", kv: 1 }]));
    expect(res.results).toEqual([
      { streamId: "str_unknown", ok: false, reason: "unknown-stream" },
      { streamId: "../x", ok: false, reason: "unknown-stream" },
    ]);
  });
});

describe("POST /streams/:id/playback-tokens", () => {
  it("mints a 1 h token by default for the owner, and for a server with the internal token", async () => {
    const owner = newUser();
    const s = await createStream(owner, { playbackPolicy: "signed" });
    const before = Date.now();
    const mine = await playbackToken(s.id, await jwt(owner));
    expect(mine.kid).toBe("k2");
    expect(mine.url).toBe(`${env.PLAYBACK_BASE_URL}/play/${mine.token}/live.m3u8`);
    const ttl = Date.parse(mine.expiresAt) - before;
    expect(ttl).toBeGreaterThan(3590_000);
    expect(ttl).toBeLessThan(3610_000);
    const server = await playbackToken(s.id, env.INTERNAL_API_TOKEN!, { viewerId: "viewer-9", expiresIn: 600 });
    expect(Date.parse(server.expiresAt) - Date.now()).toBeLessThan(601_000);
  });

  it.each([
    ["more than 24 h", { expiresIn: 86_401 }, "expiry_too_long"],
    ["a bad viewer id", { viewerId: "a/b" }, "invalid_body"],
    ["a negative lifetime", { expiresIn: -5 }, "invalid_body"],
    ["a not-before two days out", { notBefore: Math.floor(Date.now() / 1000) + 2 * 86_400 }, "not_before_too_late"],
  ])("refuses %s", async (_what, body, code) => {
    const owner = newUser();
    const s = await createStream(owner, { playbackPolicy: "signed" });
    const res = await api("POST", `/streams/${s.id}/playback-tokens`, await jwt(owner), body);
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe(code);
  });

  it("refuses a wrong internal token and an anonymous caller", async () => {
    const s = await createStream(newUser(), { playbackPolicy: "signed" });
    expect((await api("POST", `/streams/${s.id}/playback-tokens`, "not-the-internal-token", {})).status).toBe(401);
    expect((await api("POST", `/streams/${s.id}/playback-tokens`, null, {})).status).toBe(401);
  });
});

describe("media-node events", () => {
  const started = (streamId: string, broadcastId: string, time: string) =>
    makeEvent("stream.started", { streamId, nodeId: "node-a", app: "live", broadcastId }, { source: "media-node", subject: streamId, time: new Date(time) });
  const live = (streamId: string, broadcastId: string, time: string) =>
    makeEvent(
      "stream.live",
      { streamId, nodeId: "node-a", playbackUrl: "http://127.0.0.1:8000/media/x.m3u8", renditions: [{ name: "720p", width: 1280, height: 720, bandwidth: 3_000_000 }], broadcastId, masterKey: `live/${streamId}/${broadcastId}/master.m3u8` },
      { source: "media-node", subject: streamId, time: new Date(time) },
    );
  const ended = (streamId: string, broadcastId: string, time: string) =>
    makeEvent("stream.ended", { streamId, nodeId: "node-a", durationS: 30, reason: "publisher-left", broadcastId, vodKey: `live/${streamId}/${broadcastId}/vod.m3u8` }, { source: "media-node", subject: streamId, time: new Date(time) });
  const ready = (streamId: string, broadcastId: string, time: string) =>
    makeEvent("media.ready", { mediaId: broadcastId, streamId, playbackUrl: "http://127.0.0.1:8000/media/v.m3u8", playlistKey: `live/${streamId}/${broadcastId}/vod.m3u8`, durationS: 30 }, { source: "media-node", subject: streamId, time: new Date(time) });

  it("follow a broadcast through the ingress, each applied exactly once", async () => {
    const owner = newUser();
    const s = await createStream(owner);
    const t0 = Date.now();
    const at = (ms: number) => new Date(t0 + ms).toISOString();
    const obj = env.Stream.getByName(s.id);
    const first = [started(s.id, "brd_1", at(0)), live(s.id, "brd_1", at(1000))];
    expect(await obj.applyEvents(first)).toEqual(first.map((e) => ({ id: e.id, applied: true })));
    expect(await obj.applyEvents(first)).toEqual(first.map((e) => ({ id: e.id, applied: false })));
    const during = await json(await api("GET", `/streams/${s.id}`, await jwt(owner)));
    expect(during.status).toBe("live");
    expect(during.startedAt).toBe(at(0));
    expect(during.current).toMatchObject({ broadcastId: "brd_1", liveAt: at(1000) });
    expect(during.renditions).toEqual([{ name: "720p", width: 1280, height: 720, bandwidth: 3_000_000 }]);
    // Out of order: an older stream.started after the end changes nothing.
    await obj.applyEvents([ended(s.id, "brd_1", at(30_000)), started(s.id, "brd_0", at(500)), ready(s.id, "brd_1", at(31_000))]);
    await obj.applyEvents([ready(s.id, "brd_1", at(31_000))]);
    const after = await json(await api("GET", `/streams/${s.id}`, await jwt(newUser(), "member")));
    expect(after.status).toBe("ended");
    expect(after.current).toBeNull();
    expect(after.recordings).toEqual([
      { mediaId: "brd_1", broadcastId: "brd_1", durationS: 30, readyAt: at(31_000), path: "brd_1/vod.m3u8", url: `${env.PLAYBACK_BASE_URL}/play/${s.id}/brd_1/vod.m3u8` },
    ]);
  });

  it("arrive through the signed event ingress and are applied once, a replay changing nothing", async () => {
    const owner = newUser();
    const s = await createStream(owner);
    const event = live(s.id, "brd_9", new Date().toISOString());
    const body = JSON.stringify(event);
    const post = async () => {
      const headers = await signWebhook(env.EDGE_INGRESS_SECRET!, event.id, body);
      return edge("/hooks/events", { method: "POST", headers: { ...headers, "content-type": "application/json" }, body });
    };
    expect((await post()).status).toBe(200);
    const view = await json(await api("GET", `/streams/${s.id}`, await jwt(owner)));
    expect(view.status).toBe("live");
    expect(view.current?.broadcastId).toBe("brd_9");
    expect((await post()).status).toBe(200);
    expect(await env.Stream.getByName(s.id).applyEvents([event])).toEqual([{ id: event.id, applied: false }]);
  });

  it("reach the stream's object from the ingress route table (and not for command-line streams)", async () => {
    const { routeFor } = await import("../ingress/dispatch.ts");
    const e = started("str_abc", "brd_1", new Date().toISOString());
    expect(routeFor(e)).toEqual({ kind: "objects", rooms: ["str_abc"], inboxes: [], streams: ["str_abc"] });
    expect(routeFor(started("cli-stream", "brd_1", new Date().toISOString()))).toEqual({ kind: "objects", rooms: ["cli-stream"], inboxes: [] });
    expect(routeFor(ready("str_abc", "brd_1", new Date().toISOString()))).toMatchObject({ streams: ["str_abc"] });
  });

  it("for a stream that does not exist are acknowledged without effect", async () => {
    const e = started("str_never_created", "brd_1", new Date().toISOString());
    expect(await env.Stream.getByName("str_never_created").applyEvents([e])).toEqual([{ id: e.id, applied: false }]);
    expect(await env.Stream.getByName("str_never_created").get()).toBeNull();
  });
});

it("GET /streams answers JSON 404 for unknown stream sub-routes", async () => {
  const res = await edge("/streams/str_x/unknown", { headers: { authorization: `Bearer ${await jwt(newUser())}` } });
  expect(res.status).toBe(404);
});

it("answers a browser's CORS preflight for PATCH and DELETE without a token", async () => {
  const res = await edge("/streams/str_x", { method: "OPTIONS", headers: { origin: "https://dash.example", "access-control-request-method": "DELETE", "access-control-request-headers": "authorization" } });
  expect(res.status).toBe(204);
  expect(res.headers.get("access-control-allow-origin")).toBe("*");
  expect(res.headers.get("access-control-allow-methods")).toContain("DELETE");
  const get = await api("GET", "/streams", await jwt(newUser()));
  expect(get.headers.get("access-control-allow-origin")).toBe("*");
});

describe("request bodies of the streams and videos APIs", () => {
  it.each([
    ["POST /streams", "/streams"],
    ["POST /videos", "/videos"],
  ])("%s refuses a body over 16 KiB with 413", async (_what, path) => {
    const owner = newUser();
    const res = await api("POST", path, await jwt(owner), JSON.stringify({ title: "x".repeat(64 * 1024) }));
    expect(res.status).toBe(413);
    expect(await errorCode(res)).toBe("body_too_large");
  });
});
