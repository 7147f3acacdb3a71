import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { MediaState } from "../../../shared/protocol/room.ts";
import { edgeSettings } from "../settings.ts";
import { env, join, newRoom, type RoomClient } from "../../test/clients.ts";
import { installFakeBridge } from "../../test/fake-bridge.ts";

// The call protocol of a small room: peers are connections that joined the call; only they get peer frames;
// signaling has its own budget and every refusal names the frame it refuses.

const settings = edgeSettings(env);
// Presence changes go to the media side through the room's outbox: a bridge stand-in takes them.
installFakeBridge(env.BRIDGE_URL!, env.BRIDGE_INGRESS_SECRET!);
/** Tests that push hundreds of frames through one room get more than the default 5 s on a busy machine. */
const HEAVY_MS = 30_000;
const CAM: MediaState = { audio: true, video: true, screen: false };

/** Waits for the pong to ping `id`, sending it again while the chat bucket refuses it. */
async function waitForPong(client: RoomClient, id: string): Promise<void> {
  for (;;) {
    const answer = await client.next(["pong", "error"], (f) => f.id === id);
    if (answer.type === "pong") return;
    await new Promise((r) => setTimeout(r, answer.retryAfterMs ?? 50));
    client.send({ type: "ping", id });
  }
}

async function callJoin(client: RoomClient, id: string, media: MediaState = CAM, replaces?: string) {
  client.send({ type: "call.join", id, media, ...(replaces ? { replaces } : {}) });
  return client.next("call.welcome", (f) => f.id === id);
}

describe("Room call: peers", () => {
  it("a joiner gets the other peers in call.welcome; peers get per-connection peer.join/update/leave; others get nothing", async () => {
    const room = newRoom("call");
    const ada = await join(room, "ada", { name: "Ada" });
    const bo = await join(room, "bo", { name: "Bo" });
    const lurker = await join(room, "lurker");

    const w1 = await callJoin(ada, "j1");
    expect(w1).toMatchObject({ type: "call.welcome", id: "j1", peers: [], maxPeers: settings.callMaxPeers, signalBudget: { ratePerS: settings.roomSignalRatePerS, burst: settings.roomSignalBurst } });
    expect(w1.self).toMatchObject({ connectionId: ada.welcome.connectionId, userId: "ada", name: "Ada", role: "member", media: CAM });

    const w2 = await callJoin(bo, "j2", { audio: false, video: true, screen: false });
    expect(w2.peers).toEqual([w1.self]);
    const joined = await ada.next("peer.join");
    expect(joined.peer).toEqual(w2.self);
    expect(joined.peer).toMatchObject({ connectionId: bo.welcome.connectionId, userId: "bo", media: { audio: false } });

    bo.send({ type: "call.update", id: "u1", media: { audio: true, video: false, screen: true } });
    expect((await ada.next("peer.update")).peer).toMatchObject({ connectionId: bo.welcome.connectionId, media: { audio: true, video: false, screen: true } });

    ada.send({ type: "call.leave", id: "l1" });
    expect(await ada.next("call.left")).toEqual({ type: "call.left", id: "l1", reason: "left" });
    expect(await bo.next("peer.leave")).toEqual({ type: "peer.leave", connectionId: ada.welcome.connectionId, userId: "ada", reason: "left" });

    // Ada is still in the room (chat works) but no longer a peer: a new peer's welcome lists only Bo.
    const cy = await join(room, "cy");
    expect((await callJoin(cy, "j3")).peers.map((p) => p.userId)).toEqual(["bo"]);
    await bo.next("peer.join", (f) => f.peer.userId === "cy");
    bo.close();
    expect(await cy.next("peer.leave")).toMatchObject({ connectionId: bo.welcome.connectionId, reason: "closed" });

    // Proof of order: the lurker gets a later room-wide frame and has seen no call frame at all.
    cy.send({ type: "send", text: "after the call frames" });
    await lurker.next("message");
    expect(lurker.received.filter((f) => f.type.startsWith("peer.") || f.type.startsWith("call."))).toEqual([]);
    expect(ada.received.filter((f) => f.type === "peer.join" && f.peer.userId === "cy")).toEqual([]);
    for (const c of [ada, cy, lurker]) c.close();
  });

  it("one user in two tabs is two peers, each addressable on its own", async () => {
    const room = newRoom("call");
    const tab1 = await join(room, "dana");
    const tab2 = await join(room, "dana");
    const eve = await join(room, "eve");
    await callJoin(tab1, "a");
    await callJoin(tab2, "b");
    const w = await callJoin(eve, "c");
    expect(w.peers.map((p) => [p.userId, p.connectionId])).toEqual([["dana", tab1.welcome.connectionId], ["dana", tab2.welcome.connectionId]]);
    eve.send({ type: "signal", to: tab2.welcome.connectionId, kind: "offer", sdp: "v=0 to tab 2" });
    expect((await tab2.next("signal")).sdp).toBe("v=0 to tab 2");
    // Closing one tab takes out that peer only (presence still shows dana, with one connection).
    tab1.close();
    expect(await eve.next("peer.leave")).toMatchObject({ connectionId: tab1.welcome.connectionId, userId: "dana", reason: "closed" });
    expect((await eve.next("update", (f) => f.user.userId === "dana" && f.user.connections === 1)).user.connections).toBe(1);
    expect(tab1.received.some((f) => f.type === "signal")).toBe(false);
    for (const c of [tab2, eve]) c.close();
  });

  it("a rejoin from a new connection retires the same user's stale peer at once; never another user's", async () => {
    const room = newRoom("call");
    const stale = await join(room, "fay");
    const other = await join(room, "gus");
    const watcher = await join(room, "hal");
    await callJoin(stale, "s");
    await callJoin(other, "o");
    await callJoin(watcher, "w");
    // The server has not seen fay's drop (her old socket is still open): her new connection says which it replaces.
    const fresh = await join(room, "fay");
    const w = await callJoin(fresh, "f", CAM, stale.welcome.connectionId);
    expect(w.peers.map((p) => p.userId)).toEqual(["gus", "hal"]);
    expect(await stale.next("call.left")).toEqual({ type: "call.left", reason: "replaced" });
    expect(await watcher.next("peer.leave", (f) => f.userId === "fay")).toEqual({ type: "peer.leave", connectionId: stale.welcome.connectionId, userId: "fay", reason: "replaced" });
    const seen = await watcher.next("peer.join", (f) => f.peer.userId === "fay");
    expect(seen).toMatchObject({ replaces: stale.welcome.connectionId, peer: { connectionId: fresh.welcome.connectionId } });
    // The stale socket closing later changes nothing for the call.
    stale.close();
    await watcher.next("update", (f) => f.user.userId === "fay");
    expect(watcher.received.filter((f) => f.type === "peer.leave" && f.connectionId === stale.welcome.connectionId)).toHaveLength(1);

    // Naming another user's connection as replaced does nothing to it.
    const intruder = await join(room, "ivy");
    const wi = await callJoin(intruder, "i", CAM, other.welcome.connectionId);
    expect(wi.peers.map((p) => p.userId)).toEqual(["gus", "hal", "fay"]);
    expect((await watcher.next("peer.join", (f) => f.peer.userId === "ivy")).replaces).toBeUndefined();
    expect(other.received.some((f) => f.type === "call.left")).toBe(false);
    for (const c of [fresh, other, watcher, intruder]) c.close();
  });

  it("a full call refuses one more peer by name; a viewer watches but neither joins nor signals", async () => {
    const room = newRoom("call");
    const peers: RoomClient[] = [];
    for (let i = 0; i < settings.callMaxPeers; i++) {
      const c = await join(room, `p${i}`);
      await callJoin(c, `j${i}`);
      peers.push(c);
    }
    const late = await join(room, "late");
    late.send({ type: "call.join", id: "too-many", media: CAM });
    const full = await late.next("error");
    expect(full).toMatchObject({ code: "call_full", ref: "call.join", id: "too-many" });
    expect(full.message).toContain(`${settings.callMaxPeers} people are in it`);
    // When one leaves, there is room again.
    peers.shift()!.close();
    expect((await callJoin(late, "retry")).peers).toHaveLength(settings.callMaxPeers - 1);

    const viewer = await join(room, "vic", { role: "viewer" });
    expect(viewer.welcome.user.role).toBe("viewer");
    viewer.send({ type: "call.join", id: "v1", media: CAM });
    expect(await viewer.next("error")).toMatchObject({ code: "forbidden", ref: "call.join", id: "v1" });
    viewer.send({ type: "signal", id: "v2", to: late.welcome.connectionId, kind: "offer", sdp: "v=0" });
    expect(await viewer.next("error")).toMatchObject({ code: "forbidden", ref: "signal", id: "v2" });
    viewer.send({ type: "call.update", id: "v3", media: CAM });
    expect(await viewer.next("error")).toMatchObject({ code: "not_in_call", ref: "call.update", id: "v3" });
    // Watching works: the viewer sees chat.
    late.send({ type: "send", text: "hello viewer" });
    expect((await viewer.next("message")).message.text).toBe("hello viewer");
    expect(late.received.some((f) => f.type === "signal")).toBe(false);
    for (const c of [...peers, late, viewer]) c.close();
  });

  it("the roster survives hibernation: it is rebuilt from the peers' connections", async () => {
    const room = newRoom("call");
    const a = await join(room, "a");
    const b = await join(room, "b");
    await callJoin(a, "a1");
    await callJoin(b, "b1", { audio: false, video: false, screen: true });
    await a.next("peer.join");
    await evictDurableObject(env.Room.getByName(room));
    // The first thing the woken room hears of the call is a peer closing: the others still get its leave.
    const d = await join(room, "d");
    await callJoin(d, "d1");
    await evictDurableObject(env.Room.getByName(room));
    d.close();
    expect(await a.next("peer.leave", (f) => f.userId === "d")).toMatchObject({ reason: "closed" });
    const c = await join(room, "c");
    const w = await callJoin(c, "c1");
    expect(w.peers.map((p) => [p.userId, p.media.screen])).toEqual([["a", false], ["b", true]]);
    await a.next("peer.join", (f) => f.peer.userId === "c");
    b.close();
    expect(await c.next("peer.leave")).toMatchObject({ userId: "b", reason: "closed" });
    for (const x of [a, c]) x.close();
  });
});

describe("Room call: signaling", () => {
  it("relays with `from` and `fromUserId`; refuses a signal to oneself or to a gone connection by its id", async () => {
    const room = newRoom("sig");
    const a = await join(room, "a");
    const b = await join(room, "b");
    a.send({ type: "signal", id: "o1", to: b.welcome.connectionId, kind: "offer", sdp: "v=0" });
    expect(await b.next("signal")).toEqual({ type: "signal", from: a.welcome.connectionId, fromUserId: "a", kind: "offer", sdp: "v=0" });
    a.send({ type: "signal", id: "self-1", to: a.welcome.connectionId, kind: "offer", sdp: "v=0" });
    const self = await a.next("error");
    expect(self).toMatchObject({ code: "self_signal", ref: "signal", id: "self-1" });
    expect(self.message).toContain("own id");
    b.close();
    await b.closed;
    a.send({ type: "signal", id: "late-1", to: b.welcome.connectionId, kind: "candidate", candidate: { candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host", sdpMid: "0", sdpMLineIndex: 0 } });
    expect(await a.next("error")).toMatchObject({ code: "peer_not_found", ref: "signal", id: "late-1" });
    // An invalid signal is named too.
    a.send({ type: "signal", id: "bad-1", to: "x", kind: "hello" });
    expect(await a.next("error")).toMatchObject({ code: "invalid_frame", ref: "signal", id: "bad-1" });
    a.close();
  });

  it("a burst of 100 candidates arrives whole and in order (the signaling budget is its own)", async () => {
    expect(settings.roomSignalBurst).toBeGreaterThanOrEqual(100);
    const room = newRoom("sig");
    const a = await join(room, "a");
    const b = await join(room, "b");
    // Empty the chat bucket: the burst, then five pings at a time until one is refused (refills while sending on a
    // slow machine can cover a round; stopping at the first refusal stays far below the strike limit that closes
    // the socket). The 100 candidates follow at once, while the chat bucket is empty.
    let pings = 0;
    for (; pings < settings.roomRateBurst; pings++) a.send({ type: "ping", id: `p${pings}` });
    const refusedPing = () => a.received.some((f) => f.type === "error" && f.ref === "ping");
    for (let round = 0; round < 40 && !refusedPing(); round++) {
      for (let i = 0; i < 5; i++, pings++) a.send({ type: "ping", id: `p${pings}` });
      const lastId = `p${pings - 1}`;
      await a.next(["pong", "error"], (f) => f.id === lastId);
    }
    expect(settings.roomRateStrikes).toBeGreaterThan(10);
    for (let i = 0; i < 100; i++) {
      a.send({ type: "signal", id: `c${i}`, to: b.welcome.connectionId, kind: "candidate", candidate: { candidate: `candidate:${i} 1 udp 2122260223 127.0.0.1 ${40000 + i} typ host`, sdpMid: "0", sdpMLineIndex: 0 } });
    }
    const got: string[] = [];
    for (let i = 0; i < 100; i++) got.push((await b.next("signal")).candidate!.candidate);
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => `candidate:${i} 1 udp 2122260223 127.0.0.1 ${40000 + i} typ host`));
    // The answer to a ping sent after them comes after every answer to them (one ordered socket).
    a.send({ type: "ping", id: "last" });
    await waitForPong(a, "last");
    const errors = a.received.filter((f) => f.type === "error");
    expect(errors.filter((f) => f.ref === "ping").length).toBeGreaterThan(0);
    expect(errors.filter((f) => f.ref === "signal")).toEqual([]);
    for (const c of [a, b]) c.close();
  }, HEAVY_MS);

  /** Sends `total` signals numbered in their sdp from `a` to `b`; returns what became of each (by number). */
  const overdraw = (a: RoomClient, b: RoomClient & { welcome: { connectionId: string } }, total: number) => {
    for (let i = 0; i < total; i++) a.send({ type: "signal", id: `s${i}`, to: b.welcome.connectionId, kind: "offer", sdp: `v=0 s${i}` });
    return () => {
      const delivered = b.received.flatMap((f) => (f.type === "signal" ? [Number(f.sdp!.slice(5))] : []));
      const refused = a.received.flatMap((f) => (f.type === "error" && f.ref === "signal" ? [f] : []));
      return { delivered, refused, refusedIds: refused.map((r) => Number(r.id!.slice(1))) };
    };
  };

  it("a connection past its signaling budget still chats; each signal is relayed or refused by name", async () => {
    const room = newRoom("sig");
    const a = await join(room, "a");
    const b = await join(room, "b");
    // A little past the burst (how many are refused depends on how much the bucket refills while they arrive).
    const total = settings.roomSignalBurst + 15;
    const outcome = overdraw(a, b, total);
    a.send({ type: "send", text: "chat is not starved" });
    expect((await b.next("message")).message.text).toBe("chat is not starved");
    // The room handled the signals before the chat message: each socket has all of its answers by its echo.
    await a.next("message");
    const { delivered, refused, refusedIds } = outcome();
    expect([...delivered, ...refusedIds].sort((x, y) => x - y)).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(delivered).toEqual([...delivered].sort((x, y) => x - y));
    for (const r of refused) expect(r).toMatchObject({ code: "rate_limited", retryAfterMs: expect.any(Number) });
    for (const c of [a, b]) c.close();
  }, HEAVY_MS);

  it("continued overdraw is refused frame by frame, by name, then closed with 1008 like any flood", async () => {
    const room = newRoom("sig");
    const a = await join(room, "a");
    const b = await join(room, "b");
    const outcome = overdraw(a, b, settings.roomSignalBurst + 300);
    expect((await a.closed).code).toBe(1008);
    await b.next("leave");
    const { delivered, refused, refusedIds } = outcome();
    for (const r of refused) expect(r).toMatchObject({ code: "rate_limited", ref: "signal", id: expect.stringMatching(/^s\d+$/), retryAfterMs: expect.any(Number) });
    // Each frame once at most; up to the one that closed the socket (answered by the close, not an error frame), every
    // frame was relayed or refused by name, and the refusals reached the strike limit.
    const handled = [...delivered, ...refusedIds];
    expect(new Set(handled).size).toBe(handled.length);
    const closer = Array.from({ length: settings.roomSignalBurst + 300 }, (_, i) => i).find((i) => !handled.includes(i))!;
    expect(refusedIds.filter((i) => i < closer).length).toBeGreaterThanOrEqual(settings.roomRateStrikes);
    b.close();
  }, HEAVY_MS);
});
