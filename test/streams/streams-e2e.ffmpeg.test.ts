// End to end, as a broadcaster and viewers would use it: POST /streams on the edge (wrangler dev) -> real FFmpeg
// publishes over RTMP with the returned key to a media node process -> the master playlist and a segment play
// through the edge's /play (public by id; then signed, refused without a token and played with one) -> a key
// rotation cuts the live publisher, and a second media node process refuses the old key.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EdgeServer, ROOT, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { publishTestSource } from "../helpers/ffmpeg.ts";
import { parsePlaylist } from "../helpers/hls.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";
import { type GroupProcess, spawnGroup } from "../helpers/process.ts";
import { waitFor } from "../helpers/wait.ts";

const SIGNING_KEYS = "e2e:test-playback-key-e2e-0123456789abcdef";

interface NodeProcess {
  proc: GroupProcess;
  http: string;
  rtmp: string;
}

async function startNodeProcess(root: string, name: string, nats: NatsServer, edgeUrl: string): Promise<NodeProcess> {
  const [rtmpPort, httpPort] = [await freePort(), await freePort()];
  const proc = spawnGroup(process.execPath, [join(ROOT, "media-node/src/main.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...nats.env("media-node"),
      MEDIA_NODE_ID: name,
      PUBLISH_TOKEN_SECRET: TEST_SECRETS.PUBLISH_TOKEN_SECRET,
      MEDIA_RTMP_PORT: String(rtmpPort),
      MEDIA_HTTP_PORT: String(httpPort),
      MEDIA_OPS_PORT: "0",
      MEDIA_WORK_DIR: join(root, name, "work"),
      MEDIA_LADDER: "240p",
      MEDIA_SEGMENT_S: "1",
      MEDIA_X264_PRESET: "ultrafast",
      STORAGE_DRIVER: "fs",
      STORAGE_FS_DIR: join(root, "store"),
      OUTBOX_DIR: join(root, name, "outbox"),
      STREAM_KEYS_EDGE_URL: edgeUrl,
      INTERNAL_API_TOKEN: TEST_SECRETS.INTERNAL_API_TOKEN,
      STREAM_KEYS_CHECK_INTERVAL_MS: "500",
    },
  });
  await proc.waitForOutput(/"msg":"media node ready"/, 30_000);
  return { proc, http: `http://127.0.0.1:${httpPort}`, rtmp: `rtmp://127.0.0.1:${rtmpPort}/live` };
}

describe("Streams API end to end", () => {
  let root: string;
  let nats: NatsServer;
  let edge: EdgeServer;
  let node1: NodeProcess;
  let node2: NodeProcess | undefined;
  let publisher: GroupProcess | undefined;
  let owner: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "pulsecast-streams-e2e-"));
    nats = await startNats();
    const edgePort = await freePort();
    const edgeUrl = `http://127.0.0.1:${edgePort}`;
    node1 = await startNodeProcess(root, "node-1", nats, edgeUrl);
    edge = await startEdge(
      { PLAYBACK_ORIGIN_URL: `${node1.http}/media`, PLAYBACK_BASE_URL: edgeUrl, RTMP_BASE_URL: node1.rtmp, PLAYBACK_SIGNING_KEYS: SIGNING_KEYS },
      { port: edgePort },
    );
    owner = await mintHs256(TEST_SECRETS.JWT_SECRET, { sub: "e2e-owner", claims: { role: "broadcaster" } });
  });
  afterAll(async () => {
    await publisher?.kill();
    await node2?.proc.stop();
    await node1?.proc.stop();
    await edge?.stop();
    await nats?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  const api = (method: string, path: string, body?: unknown) =>
    fetch(`${edge.url}${path}`, { method, headers: { authorization: `Bearer ${owner}`, "content-type": "application/json" }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });

  /** Plays `root/live.m3u8` down to one segment; returns the segment's size. */
  async function playThrough(rootUrl: string): Promise<number> {
    const master = await waitFor("the master playlist through /play", async () => {
      const res = await fetch(`${rootUrl}/live.m3u8`);
      return res.status === 200 ? res.text() : (await res.arrayBuffer(), null);
    }, 60_000);
    const variant = parsePlaylist(master).playlists![0]!.uri;
    const media = await fetch(`${rootUrl}/${variant}`);
    expect(media.status).toBe(200);
    expect(media.headers.get("content-type")).toBe("application/vnd.apple.mpegurl");
    const segments = parsePlaylist(await media.text()).segments!;
    expect(segments.length).toBeGreaterThan(0);
    const dir = variant.slice(0, variant.lastIndexOf("/") + 1);
    const seg = await fetch(`${rootUrl}/${dir}${segments.at(-1)!.uri}`);
    expect(seg.status).toBe(200);
    expect(seg.headers.get("content-type")).toBe("video/iso.segment");
    expect(seg.headers.get("cache-control")).toContain("immutable");
    return (await seg.arrayBuffer()).byteLength;
  }

  it("publishes with the returned key, plays through /play with and without a token, and a rotation cuts the publisher", async () => {
    const res = await api("POST", "/streams", { title: "e2e" });
    expect(res.status).toBe(201);
    const stream = (await res.json()) as { id: string; rtmp: { url: string; streamKey: string }; obs: { server: string; key: string }; playback: { url: string } };
    expect(stream.rtmp.url).toBe(node1.rtmp);

    publisher = publishTestSource(`${stream.obs.server}/${stream.obs.key}`, { size: "426x240" });
    await node1.proc.waitForOutput(new RegExp(`"msg":"stream is live"[^\\n]*"streamId":"${stream.id}"`), 60_000);

    // Public: by id, no token.
    expect(await playThrough(stream.playback.url.replace(/\/live\.m3u8$/, ""))).toBeGreaterThan(0);

    // Signed: the id is refused, a viewer token plays.
    expect((await api("PATCH", `/streams/${stream.id}`, { playbackPolicy: "signed" })).status).toBe(200);
    const refused = await fetch(`${edge.url}/play/${stream.id}/live.m3u8`);
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("token_required");
    const minted = (await (await api("POST", `/streams/${stream.id}/playback-tokens`, { viewerId: "viewer-1" })).json()) as { url: string };
    expect(await playThrough(minted.url.replace(/\/live\.m3u8$/, ""))).toBeGreaterThan(0);

    // Rotation: the node's key watch cuts the live publisher within a few seconds.
    const rotatedAt = Date.now();
    expect((await api("POST", `/streams/${stream.id}/key`)).status).toBe(200);
    await node1.proc.waitForOutput(new RegExp(`"msg":"stream key revoked while live: cutting the publisher"[^\\n]*"streamId":"${stream.id}"`), 15_000);
    await node1.proc.waitForOutput(new RegExp(`"msg":"stream ended"[^\\n]*"reason":"kicked"`), 30_000);
    await publisher.exited;
    expect(Date.now() - rotatedAt).toBeLessThan(15_000);

    // A second media node process refuses the old key at once.
    node2 = await startNodeProcess(root, "node-2", nats, edge.url);
    const again = publishTestSource(`${node2.rtmp}/${stream.obs.key}`, { size: "426x240" });
    try {
      await node2.proc.waitForOutput(/"msg":"publish refused"[^\n]*"reason":"token-revoked"/, 20_000);
      await again.exited;
    } finally {
      await again.kill();
    }
  });
});
