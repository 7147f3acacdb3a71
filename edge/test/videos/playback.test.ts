// Uploaded videos play through the same /play path as live streams, in workerd with the real R2 and Durable
// Object simulations: a ready video's master playlist and segments by id (public) or with a viewer token in the
// path (signed), refusals for videos that are not playable, deleted, or named by another video's token, and a
// live recording in the owner's video list playing under its stream's id.
import { describe, expect, it } from "vitest";
import { type Envelope, makeEvent } from "../../../shared/envelope.ts";
import { signWebhook } from "../../../shared/signing/webhooks.ts";
import { api, createStream, edge, env, errorCode, jwt, newUser } from "../streams.ts";

const MASTER = '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2"\n360p/index.m3u8\n';
const MEDIA = '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:4.0,\nseg_1.m4s\n#EXT-X-ENDLIST\n';
const SEGMENT = new Uint8Array(8192).map((_, i) => (i * 7) % 253);
const renditions = [{ name: "360p", width: 640, height: 360, bandwidth: 800_000 }];

interface VideoView {
  id: string;
  status: string;
  playbackPolicy?: string;
  playbackUrl?: string;
  posterUrl?: string;
  storyboardUrl?: string;
  streamId?: string;
}

const play = (path: string, headers: Record<string, string> = {}) => edge(`/play/${path}`, { headers });

async function createVideo(owner: string, body: Record<string, unknown> = {}): Promise<VideoView> {
  const res = await api("POST", "/videos", await jwt(owner), { size: 1000, filename: "clip.mp4", ...body });
  if (res.status !== 201) throw new Error(`POST /videos answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { video: VideoView }).video;
}

async function getVideo(owner: string, id: string): Promise<VideoView> {
  const res = await api("GET", `/videos/${id}`, await jwt(owner));
  if (res.status !== 200) throw new Error(`GET /videos/${id} answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { video: VideoView }).video;
}

/** Stores a small processed video the way a media node does, and moves its record along with the node's events. */
async function processVideo(owner: string, id: string, upTo: "playable" | "ready", segment = SEGMENT): Promise<void> {
  const root = `vod/${id}`;
  await env.MEDIA.put(`${root}/master.m3u8`, MASTER);
  await env.MEDIA.put(`${root}/360p/index.m3u8`, MEDIA);
  await env.MEDIA.put(`${root}/360p/init.mp4`, new Uint8Array([0, 0, 0, 8, 102, 116, 121, 112]));
  await env.MEDIA.put(`${root}/360p/seg_1.m4s`, segment);
  await env.MEDIA.put(`${root}/poster.jpg`, new Uint8Array([0xff, 0xd8, 0xff, 0xe0]));
  await env.MEDIA.put(`${root}/storyboard.vtt`, "WEBVTT\n");
  const src = { source: "media-node/n1", subject: `media/${id}` };
  const events: Envelope[] = [makeEvent("media.playable", { mediaId: id, ownerId: owner, playbackUrl: `https://node.test/${root}/master.m3u8`, masterKey: `${root}/master.m3u8`, renditions }, src)];
  if (upTo === "ready") {
    const keys = { master: `${root}/master.m3u8`, poster: `${root}/poster.jpg`, storyboard: `${root}/storyboard.vtt` };
    events.push(makeEvent("media.ready", { mediaId: id, ownerId: owner, playbackUrl: `https://node.test/${root}/master.m3u8`, durationS: 4, renditions, keys }, src));
  }
  const outcomes = await env.VideoLibrary.getByName(owner).applyEvents(events);
  expect(outcomes.every((o) => o.applied)).toBe(true);
}

/** The `<id or token>` root of a /play URL. */
const rootOf = (url: string) => new URL(url).pathname.split("/")[2]!;

async function mintToken(owner: string, id: string, body: Record<string, unknown> = {}): Promise<{ token: string; url: string }> {
  const res = await api("POST", `/videos/${id}/playback-tokens`, await jwt(owner), body);
  if (res.status !== 201) throw new Error(`playback-tokens answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as { token: string; url: string };
}

describe("public videos through /play", () => {
  it("plays a ready video's master playlist and, through its relative URIs, a segment, by the video's id", async () => {
    const owner = newUser();
    const v = await createVideo(owner);
    await processVideo(owner, v.id, "ready");
    const view = await getVideo(owner, v.id);
    expect(view).toMatchObject({ status: "ready", playbackPolicy: "public" });
    expect(view.playbackUrl).toBe(`${env.PLAYBACK_BASE_URL}/play/${v.id}/master.m3u8`);
    expect(view.posterUrl).toBe(`${env.PLAYBACK_BASE_URL}/play/${v.id}/poster.jpg`);

    const master = await play(`${v.id}/master.m3u8`, { origin: "https://app.example" });
    expect(master.status).toBe(200);
    expect(master.headers.get("content-type")).toBe("application/vnd.apple.mpegurl");
    expect(master.headers.get("access-control-allow-origin")).toBe("*");
    const child = (await master.text()).split("\n").find((l) => l.endsWith(".m3u8"))!;
    const media = await play(`${v.id}/${child}`);
    expect(media.status).toBe(200);
    expect(media.headers.get("cache-control")).toBe("public, max-age=300");
    const seg = (await media.text()).split("\n").find((l) => l.endsWith(".m4s"))!;
    const dir = child.slice(0, child.lastIndexOf("/"));
    const segment = await play(`${v.id}/${dir}/${seg}`);
    expect(segment.status).toBe(200);
    expect(segment.headers.get("content-type")).toBe("video/iso.segment");
    expect(new Uint8Array(await segment.arrayBuffer())).toEqual(SEGMENT);
    const ranged = await play(`${v.id}/${dir}/${seg}`, { range: "bytes=10-19" });
    expect(ranged.status).toBe(206);
    expect(new Uint8Array(await ranged.arrayBuffer())).toEqual(SEGMENT.slice(10, 20));
    const poster = await play(`${v.id}/poster.jpg`);
    expect(poster.headers.get("content-type")).toBe("image/jpeg");
    await poster.arrayBuffer();
  });

  it("plays a video that is playable before it is ready; refuses one still uploading, an unknown id and a deleted video", async () => {
    const owner = newUser();
    const early = await createVideo(owner);
    await processVideo(owner, early.id, "playable");
    expect((await getVideo(owner, early.id)).playbackUrl).toBe(`${env.PLAYBACK_BASE_URL}/play/${early.id}/master.m3u8`);
    const res = await play(`${early.id}/master.m3u8`);
    expect(res.status).toBe(200);
    await res.arrayBuffer();

    const uploading = await createVideo(owner);
    await env.MEDIA.put(`vod/${uploading.id}/master.m3u8`, MASTER);
    const notYet = await play(`${uploading.id}/master.m3u8`);
    expect(notYet.status).toBe(403);
    expect(await errorCode(notYet)).toBe("video_unavailable");

    const unknown = await play("vid_01ZZZZZZZZZZZZZZZZZZZZZZZZ/master.m3u8");
    expect(unknown.status).toBe(404);
    expect(await errorCode(unknown)).toBe("video_not_found");

    const del = await api("DELETE", `/videos/${early.id}`, await jwt(owner));
    expect(del.status).toBe(200);
    await del.json();
    const gone = await play(`${early.id}/master.m3u8`);
    expect(gone.status).toBe(404);
    expect(await errorCode(gone)).toBe("video_not_found");
    expect(await env.MEDIA.get(`vod/${early.id}/360p/seg_1.m4s`)).toBeNull();
  });
});

describe("signed videos through /play", () => {
  it("refuses the id, plays with a viewer token in the path (master and a segment), and the owner's view carries one", async () => {
    const owner = newUser();
    const v = await createVideo(owner, { playbackPolicy: "signed" });
    await processVideo(owner, v.id, "ready");

    const byId = await play(`${v.id}/master.m3u8`);
    expect(byId.status).toBe(403);
    expect(await errorCode(byId)).toBe("token_required");
    expect(byId.headers.get("content-type")).toContain("application/json");

    // The owner's own view works as given: a token path.
    const view = await getVideo(owner, v.id);
    expect(view.playbackPolicy).toBe("signed");
    const ownerRoot = rootOf(view.playbackUrl!);
    expect(ownerRoot).not.toBe(v.id);
    const viaView = await play(`${ownerRoot}/master.m3u8`);
    expect(viaView.status).toBe(200);
    await viaView.arrayBuffer();

    // A viewer token minted for the video: the master and, through the relative URIs, the segment.
    const { token, url } = await mintToken(owner, v.id, { expiresIn: 600, viewerId: "viewer-1" });
    expect(url).toBe(`${env.PLAYBACK_BASE_URL}/play/${token}/master.m3u8`);
    const master = await play(`${token}/master.m3u8`);
    expect(master.status).toBe(200);
    const child = (await master.text()).split("\n").find((l) => l.endsWith(".m3u8"))!;
    const segment = await play(`${token}/${child.slice(0, child.lastIndexOf("/"))}/seg_1.m4s`);
    expect(segment.status).toBe(200);
    expect(new Uint8Array(await segment.arrayBuffer())).toEqual(SEGMENT);

    // Only the owner mints; bad bodies are refused.
    const stranger = await api("POST", `/videos/${v.id}/playback-tokens`, await jwt(newUser()), {});
    expect(stranger.status).toBe(404);
    await stranger.json();
    const tooLong = await api("POST", `/videos/${v.id}/playback-tokens`, await jwt(owner), { expiresIn: 10 * 86_400 });
    expect(tooLong.status).toBe(400);
    expect(await errorCode(tooLong)).toBe("expiry_too_long");
  });

  it("a token for video A never reaches video B", async () => {
    const owner = newUser();
    const a = await createVideo(owner, { playbackPolicy: "signed" });
    const b = await createVideo(owner, { playbackPolicy: "signed" });
    await processVideo(owner, a.id, "ready");
    await processVideo(owner, b.id, "ready", new Uint8Array([9, 9, 9]));
    await env.MEDIA.put(`vod/${b.id}/only-b.m3u8`, MEDIA);
    const { token: tokenA } = await mintToken(owner, a.id);
    // The token names its video: paths under it are A's objects only.
    const notThere = await play(`${tokenA}/only-b.m3u8`);
    expect(notThere.status).toBe(404);
    await notThere.json();
    const aSegment = await play(`${tokenA}/360p/seg_1.m4s`);
    expect(new Uint8Array(await aSegment.arrayBuffer())).toEqual(SEGMENT);
    // Dot segments are resolved before routing: these become B by id, which needs a token of its own.
    for (const path of [`${tokenA}/%2e%2e/${b.id}/360p/seg_1.m4s`, `${tokenA}/../${b.id}/master.m3u8`]) {
      const climbed = await play(path);
      expect(climbed.status, path).toBe(403);
      expect(await errorCode(climbed), path).toBe("token_required");
    }
    // A stream's token does not open a video either (its sub is the stream).
    const s = await createStream(owner, { playbackPolicy: "signed" });
    const streamToken = ((await (await api("POST", `/streams/${s.id}/playback-tokens`, await jwt(owner), {})).json()) as { token: string }).token;
    const crossed = await play(`${streamToken}/360p/seg_1.m4s`);
    expect(crossed.status).toBe(404);
    await crossed.json();
  });

  it("PATCH /videos/:id switches the policy at once for the isolate that made the change", async () => {
    const owner = newUser();
    const v = await createVideo(owner);
    await processVideo(owner, v.id, "ready");
    const open = await play(`${v.id}/master.m3u8`);
    expect(open.status).toBe(200);
    await open.arrayBuffer();
    const patched = await api("PATCH", `/videos/${v.id}`, await jwt(owner), { playbackPolicy: "signed", title: "Private now" });
    expect(patched.status).toBe(200);
    expect(((await patched.json()) as { video: VideoView }).video).toMatchObject({ playbackPolicy: "signed" });
    const closed = await play(`${v.id}/master.m3u8`);
    expect(closed.status).toBe(403);
    expect(await errorCode(closed)).toBe("token_required");

    const bad = await api("PATCH", `/videos/${v.id}`, await jwt(owner), { playbackPolicy: "everyone" });
    expect(bad.status).toBe(400);
    expect(await errorCode(bad)).toBe("invalid_body");
    const badCreate = await api("POST", "/videos", await jwt(owner), { size: 10, playbackPolicy: "secret" });
    expect(badCreate.status).toBe(400);
    expect(await errorCode(badCreate)).toBe("invalid_playback_policy");
    const notMine = await api("PATCH", `/videos/${v.id}`, await jwt(newUser()), { title: "x" });
    expect(notMine.status).toBe(404);
    await notMine.json();
  });
});

describe("live recordings in the video list", () => {
  it("play under their stream's id (public) or a stream token (signed), built from the event's playlist key", async () => {
    const owner = newUser();
    for (const policy of ["public", "signed"] as const) {
      const s = await createStream(owner, { playbackPolicy: policy });
      const broadcastId = `brd_${policy}`;
      const playlistKey = `live/${s.id}/${broadcastId}/vod.m3u8`;
      await env.MEDIA.put(playlistKey, MEDIA);
      const ready = makeEvent(
        "media.ready",
        { mediaId: broadcastId + s.id.slice(-6), ownerId: owner, streamId: s.id, playbackUrl: `https://node.test/${playlistKey}`, playlistKey, durationS: 30 },
        { source: "media-node/n1", subject: `stream/${s.id}` },
      );
      await env.VideoLibrary.getByName(owner).applyEvents([ready]);
      const view = await getVideo(owner, ready.data.mediaId as string);
      expect(view.streamId).toBe(s.id);
      expect(view.playbackUrl!.endsWith(`/${broadcastId}/vod.m3u8`)).toBe(true);
      const root = rootOf(view.playbackUrl!);
      if (policy === "public") expect(root).toBe(s.id);
      else expect(root).not.toBe(s.id);
      const res = await play(`${root}/${broadcastId}/vod.m3u8`);
      expect(res.status, policy).toBe(200);
      expect(await res.text()).toBe(MEDIA);
    }
  });

  it("a recording's media.ready through the signed ingress reaches both its stream's object and the owner's videos", async () => {
    const owner = newUser();
    const s = await createStream(owner);
    const playlistKey = `live/${s.id}/brd_ing/vod.m3u8`;
    await env.MEDIA.put(playlistKey, MEDIA);
    const event = makeEvent(
      "media.ready",
      { mediaId: "brd_ing", ownerId: owner, streamId: s.id, playbackUrl: `https://node.test/${playlistKey}`, playlistKey, durationS: 12 },
      { source: "media-node/n1", subject: `stream/${s.id}` },
    );
    const body = JSON.stringify(event);
    const headers = await signWebhook(env.EDGE_INGRESS_SECRET!, event.id, body);
    const res = await edge("/hooks/events", { method: "POST", headers: { ...headers, "content-type": "application/json" }, body });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const stream = (await (await api("GET", `/streams/${s.id}`, await jwt(owner))).json()) as { recordings: { mediaId: string; url?: string }[] };
    expect(stream.recordings.map((r) => r.mediaId)).toEqual(["brd_ing"]);
    const video = await getVideo(owner, "brd_ing");
    expect(video).toMatchObject({ streamId: s.id, status: "ready", playbackUrl: `${env.PLAYBACK_BASE_URL}/play/${s.id}/brd_ing/vod.m3u8` });
    expect(stream.recordings[0]!.url).toBe(video.playbackUrl);
  });
});
