import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type Envelope, makeEvent } from "../../../shared/envelope.ts";
import { natsPasswords, type NatsServer, startNats } from "../../../test/helpers/nats.ts";
import { freePort } from "../../../test/helpers/ports.ts";
import { waitFor } from "../../../test/helpers/wait.ts";
import { busConfig } from "./config.ts";
import { createMediaEventBus, type MediaEventBus } from "./event-bus.ts";
import { ensureEventStreams } from "./streams.ts";

const progress = (n: number) =>
  makeEvent("media.progress", { mediaId: "med_1", stage: "transcode", percent: n % 101 }, { source: "media-node/test", subject: "media/med_1" });

/** Every event id in the stream, in stream order. */
async function streamIds(nats: NatsServer, stream = "EVENTS"): Promise<string[]> {
  const nc = await connect(nats.options());
  try {
    const jsm = await nc.jetstreamManager();
    const { state } = await jsm.streams.info(stream);
    const ids: string[] = [];
    for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
      ids.push((await jsm.streams.getMessage(stream, { seq })).json<Envelope>().id);
    }
    return ids;
  } finally {
    await nc.close();
  }
}

describe("media event bus: durable outbox to JetStream (real nats-server)", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });
  afterAll(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  async function tempDir() {
    const dir = await mkdtemp(join(tmpdir(), "pulsecast-outbox-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }
  type Creds = { natsUrl: string; natsUser: string; natsPassword: string };
  function bus(creds: Creds, outboxDir: string): MediaEventBus {
    const b = createMediaEventBus(busConfig({ ...creds, outboxDir, publishTimeoutMs: 1000 }), { name: "test", log: () => undefined });
    cleanups.push(() => b.stop());
    return b;
  }

  it("keeps events on disk while NATS is down and across a restart, then publishes all of them in order", async () => {
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    const passwords = natsPasswords();
    const creds = { natsUrl: url, natsUser: "media-node", natsPassword: passwords["media-node"] };
    const dir = await tempDir();

    // No nats-server yet: publish() still resolves, because the events are on disk.
    const first = bus(creds, dir);
    await first.start();
    const events = Array.from({ length: 500 }, (_, i) => progress(i));
    await Promise.all(events.slice(0, 300).map((e) => first.publish(e)));
    expect(first.backlog).toBe(300);
    const onDisk = (await readFile(join(dir, "events.jsonl"), "utf8")).trim().split("\n");
    expect(onDisk.map((l) => (JSON.parse(l) as Envelope).id)).toEqual(events.slice(0, 300).map((e) => e.id));

    // The node restarts, still without NATS, and emits more.
    await first.stop();
    const second = bus(creds, dir);
    await second.start();
    expect(second.backlog).toBe(300);
    for (const e of events.slice(300)) await second.publish(e);

    // NATS comes up: everything goes out, in emission order, once each.
    const nats = await startNats({ port, passwords });
    cleanups.push(() => nats.stop());
    await second.drained();
    expect(await streamIds(nats)).toEqual(events.map((e) => e.id));
    expect(second.backlog).toBe(0);
    expect(await readFile(join(dir, "events.jsonl"), "utf8")).toBe("");
  });

  it("loses nothing and keeps order when nats-server is SIGKILLed in the middle of a burst", async () => {
    const nats: NatsServer = await startNats();
    cleanups.push(() => nats.stop());
    const b = bus(nats.settings("media-node"), await tempDir());
    await b.start();
    const events = Array.from({ length: 2000 }, (_, i) => progress(i));
    const publishing = (async () => {
      for (let i = 0; i < events.length; i += 50) await Promise.all(events.slice(i, i + 50).map((e) => b.publish(e)));
    })();
    // Kill it once some events are through, while the rest are still being emitted.
    const nc: NatsConnection = await connect(nats.options());
    const jsm = await nc.jetstreamManager();
    await ensureEventStreams(jsm, busConfig());
    await waitFor("200 events stored before the kill", async () => (await jsm.streams.info("EVENTS")).state.messages >= 200);
    await nc.close();
    await nats.restart({ hard: true });
    await publishing;
    await b.drained();
    const ids = await streamIds(nats);
    // Acks lost in the kill may make the outbox re-send; JetStream drops those by message id.
    expect(ids).toEqual(events.map((e) => e.id));
  });

  it("refuses a malformed event with a clear error and stores nothing", async () => {
    const nats = await startNats();
    cleanups.push(() => nats.stop());
    const dir = await tempDir();
    const b = bus(nats.settings("media-node"), dir);
    await b.start();
    const bad = { ...progress(1), data: { mediaId: "m", stage: "nope", percent: 500 } } as unknown as Envelope;
    await expect(b.publish(bad)).rejects.toThrow(/invalid media.progress data/);
    const unknown = { ...progress(1), type: "media.exploded" } as unknown as Envelope;
    await expect(b.publish(unknown)).rejects.toThrow(/unknown event type/);
    expect(b.backlog).toBe(0);
    expect(await readFile(join(dir, "events.jsonl"), "utf8")).toBe("");
  });
});
