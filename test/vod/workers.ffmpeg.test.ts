// Jobs across media nodes: two real media-node processes pull finished uploads from the JetStream work-queue
// stream (NATS with authorization, each process as its role). A node SIGKILLed mid-job (with its FFmpeg) loses
// the job to the other node after the ack wait, which finishes it: one media.ready in the stream, every stored
// object named once. Bad input ends at once as media.failed; a failure worth retrying is retried a bounded
// number of times and then ends as media.failed with its stage.

import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AckPolicy, connect, DeliverPolicy, type JetStreamManager, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Envelope, makeEvent, parseEvent } from "../../shared/envelope.ts";
import { FsObjectStore } from "../../media-node/src/storage/index.ts";
import { ROOT, TEST_SECRETS } from "../helpers/edge.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";
import { parsePlaylist } from "../helpers/hls.ts";
import { freePort } from "../helpers/ports.ts";
import { type GroupProcess, spawnGroup } from "../helpers/process.ts";
import { waitFor } from "../helpers/wait.ts";
import { makeSource } from "./sources.ts";

// Long enough that a busy but alive node always extends its job in time (it does so every third of this).
const ACK_WAIT_S = 5;
const MAX_ATTEMPTS = 3;

let nats: NatsServer;
let root: string;
let store: FsObjectStore;
let ops: NatsConnection;
let jsm: JetStreamManager;
let edge: NatsConnection;
const nodes = new Map<string, GroupProcess>();
const seen: Envelope[] = [];

async function startNode(id: string): Promise<GroupProcess> {
  const [rtmp, http, opsPort] = [await freePort(), await freePort(), await freePort()];
  const proc = spawnGroup(process.execPath, [join(ROOT, "media-node/src/main.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...nats.env("media-node"),
      PUBLISH_TOKEN_SECRET: TEST_SECRETS.PUBLISH_TOKEN_SECRET,
      MEDIA_NODE_ID: id,
      MEDIA_RTMP_PORT: String(rtmp),
      MEDIA_HTTP_PORT: String(http),
      MEDIA_OPS_PORT: String(opsPort),
      MEDIA_WORK_DIR: join(root, id, "work"),
      OUTBOX_DIR: join(root, id, "outbox"),
      // One bucket shared by both nodes, as R2 is in production.
      STORAGE_DRIVER: "fs",
      STORAGE_FS_DIR: join(root, "store"),
      VOD_ACK_WAIT_S: String(ACK_WAIT_S),
      VOD_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      VOD_RETRY_DELAY_S: "1",
      VOD_SEGMENT_S: "2",
      VOD_LADDER: "480p,360p",
    },
  });
  await proc.waitForOutput(/"msg":"vod worker pulling jobs"/, 60_000);
  nodes.set(id, proc);
  return proc;
}

/** The edge's side: a finished upload stored, then media.uploaded published as the HTTP -> NATS bridge would. */
async function submit(videoId: string, sourceFile: string | undefined): Promise<Envelope> {
  const key = `uploads/${videoId}/source`;
  if (sourceFile) await store.put(key, { file: sourceFile });
  const event = makeEvent("media.uploaded", { mediaId: videoId, ownerId: "alice", key }, { source: "edge", subject: `media/${videoId}` });
  await edge.jetstream().publish("media.uploaded", JSON.stringify(event), { msgID: event.id });
  return event;
}

function eventsOf(videoId: string, type?: string): Envelope[] {
  return seen.filter((e) => "mediaId" in (e.data as object) && (e.data as { mediaId: string }).mediaId === videoId && (!type || e.type === type));
}

/** Every media.* event JetStream stored for `videoId` (the stream keeps one per id: duplicates were dropped). */
async function storedEvents(videoId: string): Promise<Envelope[]> {
  const name = `check-${Math.random().toString(36).slice(2)}`;
  await jsm.consumers.add("EVENTS", { name, ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All, filter_subject: "media.>", inactive_threshold: 60_000_000_000 });
  const consumer = await ops.jetstream().consumers.get("EVENTS", name);
  const info = await jsm.streams.info("EVENTS");
  const out: Envelope[] = [];
  const batch = await consumer.fetch({ max_messages: 10_000, expires: 2000 });
  for await (const m of batch) {
    const parsed = parseEvent(m.json());
    if (parsed.ok && (parsed.event.data as { mediaId?: string }).mediaId === videoId) out.push(parsed.event);
    if (m.info.streamSequence >= info.state.last_seq) break;
  }
  return out;
}

async function jobsLeft(): Promise<number> {
  return (await jsm.streams.info("VOD_JOBS")).state.messages;
}

beforeAll(async () => {
  nats = await startNats();
  root = await mkdtemp(join(tmpdir(), "pulsecast-vod-workers-"));
  store = new FsObjectStore({ dir: join(root, "store"), publicBaseUrl: "http://127.0.0.1:1/media" });
  ops = await connect(nats.options("ops"));
  jsm = await ops.jetstreamManager();
  edge = await connect(nats.options("http-to-nats"));
  const sub = ops.subscribe("media.>");
  void (async () => {
    for await (const m of sub) {
      const parsed = parseEvent(m.json());
      if (parsed.ok) seen.push(parsed.event);
    }
  })();
  await Promise.all([startNode("n1"), startNode("n2")]);
});

afterAll(async () => {
  await Promise.all([...nodes.values()].map((n) => n.stop()));
  await edge?.close();
  await ops?.close();
  await nats?.stop();
  await rm(root, { recursive: true, force: true });
});

describe("VOD jobs across two media nodes", () => {
  it("a text file named .mp4 ends at once as media.failed at the probe, never retried", async () => {
    await submit("bad1", await makeSource("text", root));
    await waitFor("media.failed for bad1", () => eventsOf("bad1", "media.failed").length > 0, 60_000, 100);
    const [failed] = eventsOf("bad1", "media.failed");
    expect(failed!.data).toMatchObject({ mediaId: "bad1", ownerId: "alice", stage: "probe", reason: expect.stringMatching(/not a readable audio or video file/) });
    await waitFor("the job removed from the queue", async () => (await jobsLeft()) === 0, 10_000, 100);
    // One attempt only: a single "vod job started" across both nodes.
    const started = [...nodes.values()].map((n) => (n.output().match(/"msg":"vod job started"[^\n]*"videoId":"bad1"/g) ?? []).length);
    expect(started.reduce((a, b) => a + b, 0)).toBe(1);
  });

  it("a failure worth retrying is retried, then ends as media.failed with its stage after the last attempt", async () => {
    // The source key names a folder: reading it fails with an I/O error, which is not the upload's fault.
    await mkdir(store.pathOf("uploads/io1/source"), { recursive: true });
    await submit("io1", undefined);
    await waitFor("media.failed for io1", () => eventsOf("io1", "media.failed").length > 0, 60_000, 100);
    expect(eventsOf("io1", "media.failed")[0]!.data).toMatchObject({ stage: "download", reason: expect.stringMatching(/EISDIR|directory/i) });
    const started = [...nodes.values()].map((n) => (n.output().match(/"msg":"vod job started"[^\n]*"videoId":"io1"/g) ?? []).length);
    expect(started.reduce((a, b) => a + b, 0)).toBe(MAX_ATTEMPTS);
    await waitFor("the job removed from the queue", async () => (await jobsLeft()) === 0, 10_000, 100);
  });

  it("a node killed mid-job: the other node takes the job after the ack wait and finishes it, once", async () => {
    const source = await makeSource("landscape", root, 20);
    await submit("kill1", source);
    const progress = await waitFor("transcode progress for kill1", () => eventsOf("kill1", "media.progress").find((e) => (e.data as { stage: string }).stage === "transcode"), 60_000, 50);
    const victim = progress.source.replace("media-node/", "");
    const survivor = victim === "n1" ? "n2" : "n1";
    const killedAt = Date.now();
    await nodes.get(victim)!.kill();
    nodes.delete(victim);

    const ready = await waitFor("media.ready for kill1", () => eventsOf("kill1", "media.ready")[0], 120_000, 100);
    expect(ready.source).toBe(`media-node/${survivor}`);
    // The survivor could only have it after the ack wait ran out.
    const restarted = nodes.get(survivor)!.output().match(/"msg":"vod job started"[^\n]*"videoId":"kill1"[^\n]*/)?.[0];
    expect(restarted).toMatch(/"delivery":2/);
    expect(Date.now() - killedAt).toBeGreaterThan(ACK_WAIT_S * 1000 - 500);
    const data = ready.data as { durationS: number; renditions: { name: string }[]; keys: { master: string; poster: string; storyboard: string; thumbnails: string[] } };
    expect(data.durationS).toBeGreaterThan(19.5);
    expect(data.renditions.map((r) => r.name)).toEqual(["480p", "360p"]);

    // JetStream holds one ready for the video (same id from any node, duplicates dropped), and no failure.
    const stored = await storedEvents("kill1");
    expect(stored.filter((e) => e.type === "media.ready")).toHaveLength(1);
    expect(stored.filter((e) => e.type === "media.failed")).toHaveLength(0);
    expect(stored.filter((e) => e.type === "media.playable").length).toBe(1);
    await waitFor("the job acked and gone", async () => (await jobsLeft()) === 0, 10_000, 100);

    // Every stored object is one the final playlists, the poster, thumbnails or storyboard name: nothing from the
    // killed attempt was left under another name.
    const keys = await store.list("vod/kill1/");
    const expected = new Set<string>(["vod/kill1/master.m3u8", "vod/kill1/ready.json", "vod/kill1/poster.jpg", "vod/kill1/poster-sm.jpg", "vod/kill1/storyboard.vtt", "vod/kill1/storyboard.json", ...data.keys.thumbnails]);
    const master = parsePlaylist(new TextDecoder().decode((await store.get(data.keys.master))!.body));
    const uris = [...master.playlists.map((p: { uri: string }) => p.uri), ...(Object.values(master.mediaGroups.AUDIO.aud) as { uri: string }[]).map((a) => a.uri)];
    let segments = 0;
    for (const uri of uris) {
      const folder = `vod/kill1/${uri.split("/")[0]}`;
      expected.add(`vod/kill1/${uri}`);
      const m = parsePlaylist(new TextDecoder().decode((await store.get(`vod/kill1/${uri}`))!.body));
      expect(m.endList).toBe(true);
      for (const s of m.segments as { uri: string; map: { uri: string } }[]) {
        expected.add(`${folder}/${s.uri}`);
        expected.add(`${folder}/${s.map.uri}`);
        segments++;
      }
    }
    const vtt = new TextDecoder().decode((await store.get(data.keys.storyboard))!.body);
    for (const sheet of new Set([...vtt.matchAll(/^(storyboard\/sprite_\d+\.jpg)#/gm)].map((m) => m[1]))) expected.add(`vod/kill1/${sheet}`);
    expect(segments).toBeGreaterThan(3 * 9);
    expect(keys.sort()).toEqual([...expected].sort());
  });
});
