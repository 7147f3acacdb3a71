// The pure parts of big rooms: placement, the shard's message ring, the sums on the way up.
import { describe, expect, it } from "vitest";
import type { ChatMessage } from "../../../shared/protocol/room.ts";
import { waitFor } from "../../../test/helpers/wait.ts";
import { DownlinkCoalescer } from "./downlink.ts";
import { emptyByRole, noteChatter, parseUp, sumReports } from "./links.ts";
import { connectionIdFor, homeShard, isBigRoom, parentOf, parsePartName, relayName, shardName, shardOfConnection, shardOrder } from "./placement.ts";
import { MessageRing } from "./ring.ts";

const msg = (id: number): ChatMessage => ({ id, userId: "u", text: `m${id}`, at: id });

describe("placement", () => {
  it("marks big rooms by exact id or prefix pattern", () => {
    expect(isBigRoom("big-1", ["big-*"])).toBe(true);
    expect(isBigRoom("final", ["final", "x-*"])).toBe(true);
    expect(isBigRoom("finals", ["final"])).toBe(false);
    expect(isBigRoom("room-1", [])).toBe(false);
  });

  it("places a user on one shard every time and spreads users evenly", () => {
    expect(homeShard("alice", 8)).toBe(homeShard("alice", 8));
    const counts = new Array(8).fill(0);
    for (let i = 0; i < 8000; i++) counts[homeShard(`user-${i}`, 8)]++;
    for (const n of counts) expect(Math.abs(n - 1000)).toBeLessThan(120);
    expect(shardOrder("alice", 4)).toEqual([0, 1, 2, 3].map((k) => (homeShard("alice", 4) + k) % 4));
  });

  it("names parts so they never collide with a room id, and reads them back", () => {
    expect(parsePartName(shardName("r:1", 3))).toEqual({ roomId: "r:1", kind: "shard", index: 3 });
    expect(parsePartName(relayName("r", 0))).toEqual({ roomId: "r", kind: "relay", index: 0 });
    expect(parsePartName("plain-room")).toBeNull();
    const id = connectionIdFor(5, "0f8f1b7e-1111-4a4a-9b9b-123456789abc");
    expect(shardOfConnection(id)).toBe(5);
    expect(shardOfConnection("u:alice")).toBeNull();
    expect(shardOfConnection("0f8f1b7e-1111-4a4a-9b9b-123456789abc")).toBeNull();
  });

  it("links shards to the coordinator directly up to the fanout, through relays past it", () => {
    expect(parentOf(7, 8, 32)).toEqual({ kind: "coordinator" });
    expect(parentOf(0, 512, 32)).toEqual({ kind: "relay", index: 0 });
    expect(parentOf(511, 512, 32)).toEqual({ kind: "relay", index: 15 });
  });
});

describe("message ring", () => {
  it("keeps the newest messages, ignores repeats, and says when a resume reaches past it", () => {
    const ring = new MessageRing(3);
    for (const id of [1, 2, 3, 4, 4, 2]) ring.push(msg(id));
    expect(ring.latest(10).map((m) => m.id)).toEqual([2, 3, 4]);
    expect(ring.after(1)?.map((m) => m.id)).toEqual([2, 3, 4]);
    expect(ring.after(3)?.map((m) => m.id)).toEqual([4]);
    expect(ring.after(4)).toEqual([]);
    expect(ring.after(0)).toBeNull();
    ring.markDeleted(3);
    expect(ring.latest(2)[0]).toMatchObject({ id: 3, text: "", deleted: true });
  });

  it("is filled from a snapshot and knows the newest id even when it holds none", () => {
    const ring = new MessageRing(2);
    ring.fill([], 9);
    expect([ring.lastId, ring.firstId(), ring.after(9)]).toEqual([9, 10, []]);
    expect(ring.after(5)).toBeNull();
    ring.fill([msg(8), msg(9), msg(10)], 10);
    expect(ring.latest(5).map((m) => m.id)).toEqual([9, 10]);
  });
});

describe("sums on the way up", () => {
  it("adds presence reports and keeps the featured list bounded", () => {
    const mod = { userId: "m", role: "moderator" as const, connections: 1, state: {} };
    const a = { connections: 3, users: 2, byRole: { ...emptyByRole(), viewer: 1, moderator: 1 }, featured: [mod] };
    const b = { connections: 1, users: 1, byRole: { ...emptyByRole(), member: 1 }, featured: [] };
    expect(sumReports([a, b])).toEqual({ connections: 4, users: 3, byRole: { viewer: 1, member: 1, moderator: 1, broadcaster: 0 }, featured: [mod] });
    const many = Array.from({ length: 80 }, () => a);
    expect(sumReports(many).featured).toHaveLength(50);
  });

  it("keeps recent chatters newest first, each once", () => {
    let list = noteChatter([], { userId: "a", at: 1 });
    list = noteChatter(list, { userId: "b", at: 2 });
    list = noteChatter(list, { userId: "a", at: 3 });
    expect(list).toEqual([{ userId: "a", at: 3 }, { userId: "b", at: 2 }]);
  });

  it("reads only link frames", () => {
    expect(parseUp('{"k":"react","counts":{"x":1}}')).toEqual({ k: "react", counts: { x: 1 } });
    expect(parseUp('{"type":"send"}')).toBeNull();
    expect(parseUp("{nope")).toBeNull();
  });
});

describe("downlink coalescing", () => {
  it("lets reaction totals and summaries ride with the next chat window, and sends them alone when no chat comes", async () => {
    const sent: string[] = [];
    const sentAt: number[] = [];
    const down = new DownlinkCoalescer(10, 80, (t) => {
      sent.push(t);
      sentAt.push(Date.now());
    });
    // The lazy reaction total goes out in the chat's frame, together with it (a timer firing late on a busy
    // machine changes when, not what: the content is the assertion).
    down.push({ type: "reactions", counts: { "🔥": 2 }, at: 1 }, true);
    down.push({ type: "comment", userId: "u", text: "hi", at: 2 });
    await waitFor("the chat window", () => sent.length === 1);
    expect(JSON.parse(sent[0]!).frames.map((f: { type: string }) => f.type)).toEqual(["reactions", "comment"]);

    // Alone, it waits for its own (longer) window: timers never fire early, so this bound holds on any machine.
    down.push({ type: "reactions", counts: { "👏": 1 }, at: 3 }, true);
    const t1 = Date.now();
    await waitFor("the lazy window", () => sent.length === 2);
    expect(sentAt[1]! - t1).toBeGreaterThanOrEqual(79);
    expect(JSON.parse(sent[1]!)).toMatchObject({ type: "reactions", counts: { "👏": 1 } });
  });

  it("sends chat in a quiet moment without waiting for a window, and keeps frames a window apart when it flows", async () => {
    const sent: string[] = [];
    const sentAt: number[] = [];
    const down: DownlinkCoalescer = new DownlinkCoalescer(10, 80, (t) => {
      sent.push(t);
      sentAt.push(Date.now());
      // Right behind the first frame: these wait until a window after it, and leave together.
      if (sent.length === 1) {
        down.push({ type: "comment", userId: "u", text: "three", at: 3 });
        down.push({ type: "comment", userId: "u", text: "four", at: 4 });
      }
    });
    // Two frames of one event leave together, as soon as the event is done.
    down.push({ type: "comment", userId: "u", text: "one", at: 1 });
    down.push({ type: "comment", userId: "u", text: "two", at: 2 });
    expect(sent).toEqual([]);
    await waitFor("both frames", () => sent.length === 2);
    expect(sent.map((t) => JSON.parse(t).frames.map((f: { text: string }) => f.text))).toEqual([
      ["one", "two"],
      ["three", "four"],
    ]);
    expect(sentAt[1]! - sentAt[0]!).toBeGreaterThanOrEqual(9);
  });
});
