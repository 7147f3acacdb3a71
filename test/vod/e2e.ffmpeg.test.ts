// An upload from end to end: a tus client sends a real video to the edge (wrangler dev), the edge stores it in
// R2 and queues the job through its outbox and the HTTP -> NATS bridge, the media node's worker processes it,
// and its events come back through the NATS -> HTTP bridge to the video's record at the edge.

import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePlaylist } from "../helpers/hls.ts";
import { waitFor } from "../helpers/wait.ts";
import { makeSource } from "./sources.ts";
import { startVodStack, type VodStack } from "./stack.ts";

let stack: VodStack;
beforeAll(async () => {
  stack = await startVodStack({ VOD_SEGMENT_S: "2", VOD_LADDER: "480p,360p" });
});
afterAll(async () => {
  await stack?.stop();
});

describe("VOD from upload to playback", () => {
  it("a tus upload becomes a ready video with playlists, poster and storyboard the edge points to", async () => {
    const file = new Uint8Array(await readFile(await makeSource("landscape", stack.root, 8)));
    const tus = await stack.tus("carol", 256 * 1024);
    const { url } = await tus.upload(file, "clip", { filename: "clip.mp4", filetype: "video/mp4", title: "Clip" });
    const id = new URL(url).pathname.split("/").at(-1)!;

    const playable = await stack.waitForEvent("media.playable", id);
    const ready = await stack.waitForEvent("media.ready", id);
    expect(playable.at).toBeLessThanOrEqual(ready.at);

    // The record at the edge follows (through the NATS -> HTTP bridge and the ingress).
    const video = await waitFor(
      "the video's record at the edge to be ready",
      async () => {
        const v = ((await (await stack.api("carol", `/videos/${id}`)).json()) as { video: Record<string, unknown> }).video;
        return v.status === "ready" ? v : undefined;
      },
      30_000,
      200,
    );
    expect(video).toMatchObject({ status: "ready", title: "Clip", filename: "clip.mp4", size: file.byteLength });
    expect(video.durationS as number).toBeGreaterThan(7.5);
    // Played through the edge's /play by the video's id (public by default), like a live stream.
    expect(video.playbackUrl).toBe(`${stack.edge.url}/play/${id}/master.m3u8`);
    const master = await fetch(video.playbackUrl as string);
    expect(master.status).toBe(200);
    const m = parsePlaylist(await master.text());
    expect(m.playlists.map((p: { uri: string }) => p.uri).sort()).toEqual(["360p/index.m3u8", "480p/index.m3u8"]);
    const rung = parsePlaylist(await (await fetch(new URL("480p/index.m3u8", video.playbackUrl as string))).text());
    expect(rung.endList).toBe(true);
    expect((await fetch(new URL(rung.segments[0].uri, new URL("480p/index.m3u8", video.playbackUrl as string)))).status).toBe(200);
    expect((await fetch(video.posterUrl as string)).headers.get("content-type")).toMatch(/jpeg/);
    expect(await (await fetch(video.storyboardUrl as string)).text()).toMatch(/^WEBVTT/);

    const list = (await (await stack.api("carol", "/videos")).json()) as { videos: { id: string }[] };
    expect(list.videos.map((v) => v.id)).toContain(id);
    expect((await stack.api("dave", `/videos/${id}`)).status).toBe(404);
  });

  it("a video deleted while the node processes it ends with nothing of it stored and no ready event", async () => {
    const file = new Uint8Array(await readFile(await makeSource("landscape", stack.root, 30)));
    const tus = await stack.tus("erin", 8 * 1024 * 1024);
    const { url } = await tus.upload(file, "long", { filename: "long.mp4", filetype: "video/mp4", title: "Long" });
    const id = new URL(url).pathname.split("/").at(-1)!;
    // Playable: the node has stored the first segments of every rendition and is still encoding the rest.
    await stack.waitForEvent("media.playable", id);
    const dropped = stack.node.waitForOutput(new RegExp(`"msg":"vod job dropped: the video was deleted"[^\n]*"videoId":"${id}"`), 60_000);
    const del = await stack.api("erin", `/videos/${id}`, { method: "DELETE" });
    expect(del.status).toBe(200);
    await dropped;

    // The node stores its outputs in its own folder (the edge's playback origin): nothing of the video is left there.
    const folder = join(stack.root, "store", "vod", id);
    const files = await readdir(folder, { recursive: true, withFileTypes: true }).catch(() => []);
    expect(files.filter((f) => f.isFile()).map((f) => f.name)).toEqual([]);
    expect(stack.events.filter((e) => e.event.type === "media.ready" && (e.event.data as { mediaId: string }).mediaId === id)).toEqual([]);
    expect((await stack.api("erin", `/videos/${id}`)).status).toBe(404);
    expect((await fetch(`${stack.edge.url}/play/${id}/master.m3u8`)).status).toBe(404);
  });
});
