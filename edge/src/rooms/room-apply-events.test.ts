import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type Envelope, makeEvent } from "../../../shared/envelope.ts";
import { env, join, newRoom } from "../../test/clients.ts";

// Room.applyEvents: the batch RPC of the event ingress. Every event applied once, in one transaction,
// per-event outcomes in input order, broadcasts after the commit in input order.

const started = (room: string) => makeEvent("stream.started", { streamId: "s1", roomId: room, nodeId: "n", app: "live" }, { source: "media-node/n", subject: "stream/s1" });
const live = (room: string) =>
  makeEvent("stream.live", { streamId: "s1", roomId: room, nodeId: "n", playbackUrl: "https://cdn.example/live/s1/master.m3u8", renditions: [] }, { source: "media-node/n", subject: "stream/s1" });

async function ledgerHas(room: string, id: string): Promise<boolean> {
  return runInDurableObject(env.Room.getByName(room), (_i, state) => state.storage.sql.exec("SELECT 1 FROM applied_events WHERE id = ?", id).toArray().length > 0);
}

describe("Room.applyEvents", () => {
  it("applies a batch once with one outcome per event, in order, and broadcasts the applied ones in order", async () => {
    const room = newRoom();
    const watcher = await join(room, "watcher", { role: "viewer" });
    const a = started(room);
    const b = live(room);
    const wrongType = makeEvent("notification.requested", { notificationId: "n1", userId: "u1", title: "t" }, { source: "t", subject: "user/u1" });
    const malformed = { ...live(room), data: { streamId: "s1" } } as unknown as Envelope;
    const outcomes = await env.Room.getByName(room).applyEvents([a, b, a, wrongType, malformed]);
    expect(outcomes).toEqual([
      { id: a.id, applied: true },
      { id: b.id, applied: true },
      // the same id again within the batch: applied once
      { id: a.id, applied: false },
      { id: wrongType.id, applied: false, error: expect.stringMatching(/rooms take stream\.\* and media\.\* events, not 'notification.requested'/) },
      { id: malformed.id, applied: false, error: expect.stringContaining(`room ${room}:`) },
    ]);
    expect((await watcher.next("event")).event).toMatchObject({ id: a.id });
    expect((await watcher.next("event")).event).toMatchObject({ id: b.id });
    expect(await ledgerHas(room, wrongType.id)).toBe(false);
    expect(await ledgerHas(room, malformed.id)).toBe(false);

    // Posted again: nothing applied, nothing broadcast (a later frame proves it).
    expect((await env.Room.getByName(room).applyEvents([a, b])).map((o) => o.applied)).toEqual([false, false]);
    watcher.send({ type: "react", emoji: "👀" });
    await watcher.next("reactions");
    expect(watcher.received.filter((f) => f.type === "event")).toHaveLength(2);

    const late = await join(room, "late");
    expect(late.welcome.room.stream).toMatchObject({ streamId: "s1", status: "live" });
    watcher.close();
    late.close();
  });

  it("a room with nobody in it applies events without queueing frames; a joiner gets the state, then frames", async () => {
    const room = newRoom();
    const a = started(room);
    expect(await env.Room.getByName(room).applyEvents([a])).toEqual([{ id: a.id, applied: true }]);
    const first = await join(room, "first", { role: "viewer" });
    expect(first.welcome.room.stream).toMatchObject({ streamId: "s1", status: "starting" });
    const b = live(room);
    await env.Room.getByName(room).applyEvents([b]);
    expect((await first.next("event")).event).toMatchObject({ id: b.id });
    expect(first.received.filter((f) => f.type === "event")).toHaveLength(1);
    first.close();
    await first.closed;

    // Empty again: the end is stored, and the next joiner sees it in its welcome (and no earlier event as a frame).
    const end = makeEvent("stream.ended", { streamId: "s1", roomId: room, nodeId: "n", durationS: 5, reason: "publisher-left" }, { source: "media-node/n", subject: "stream/s1" });
    expect(await env.Room.getByName(room).applyEvents([end])).toEqual([{ id: end.id, applied: true }]);
    const second = await join(room, "second", { role: "viewer" });
    expect(second.welcome.room.stream).toMatchObject({ streamId: "s1", status: "ended" });
    second.send({ type: "react", emoji: "👀" });
    await second.next("reactions");
    expect(second.received.filter((f) => f.type === "event")).toHaveLength(0);
    second.close();
  });

  it("applyEvent keeps its contract on top of it: applied / not applied, and throws for an event the room cannot take", async () => {
    const room = newRoom();
    const event = started(room);
    expect(await env.Room.getByName(room).applyEvent(event)).toEqual({ applied: true });
    expect(await env.Room.getByName(room).applyEvent(event)).toEqual({ applied: false });
    const other = makeEvent("chat.message", { roomId: room, messageId: 1, userId: "u", text: "hi", at: 1 }, { source: "edge", subject: `room/${room}` });
    const failure = await env.Room.getByName(room).applyEvent(other).then(() => "resolved", (e: unknown) => String(e));
    expect(failure).toMatch(/not 'chat.message'/);
  });
});
