// An upload from end to end: a tus client sends a real video to the edge (wrangler dev), the edge stores it in
// R2 and queues the job through its outbox and the HTTP -> NATS bridge, the media node's worker processes it,
// and its events come back through the NATS -> HTTP bridge to the video's record at the edge.

import { readFile } from "node:fs/promises";
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
});
