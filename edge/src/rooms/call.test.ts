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
const CAM: MediaState = { audio: true, video: true, screen: false };

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
    const seen = await watcher.next("peer.join", (f) => f.peer.userId === "fay");
    expect(seen).toMatchObject({ replaces: stale.welcome.connectionId, peer: { connectionId: fresh.welcome.connectionId } });
    // The stale socket closing later changes nothing for the call.
    stale.close();
    await watcher.next("update", (f) => f.user.userId === "fay");
    expect(watcher.received.some((f) => f.type === "peer.leave" && f.connectionId === stale.welcome.connectionId)).toBe(false);

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
    // Spend the chat budget first: signaling does not share it. Twice the burst is sent, so refills while
    // sending (a loaded machine sends slowly) still leave the chat bucket empty.
    const pings = settings.roomRateBurst * 2;
    for (let i = 0; i < pings; i++) a.send({ type: "ping", id: `p${i}` });
    expect(await a.next("error")).toMatchObject({ code: "rate_limited", ref: "ping" });
    for (let i = 0; i < 100; i++) {
      a.send({ type: "signal", id: `c${i}`, to: b.welcome.connectionId, kind: "candidate", candidate: { candidate: `candidate:${i} 1 udp 2122260223 127.0.0.1 ${40000 + i} typ host`, sdpMid: "0", sdpMLineIndex: 0 } });
    }
    const got: string[] = [];
    for (let i = 0; i < 100; i++) got.push((await b.next("signal")).candidate!.candidate);
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => `candidate:${i} 1 udp 2122260223 127.0.0.1 ${40000 + i} typ host`));
    expect(a.received.filter((f) => f.type === "error" && f.ref === "signal")).toEqual([]);
    for (const c of [a, b]) c.close();
  }, 30_000);

  it("past the signaling budget, each refused frame is named with retryAfterMs, and chat still flows", async () => {
    const room = newRoom("sig");
    const a = await join(room, "a");
    const b = await join(room, "b");
    // The burst, then ten more at a time until one is refused. Refills while sending (a loaded machine sends
    // slowly) can cover a round; stopping at the first refusing round keeps the refusals under the strike limit
    // that closes an abusive socket, so every frame can be accounted for.
    let total = 0;
    const signal = () => a.send({ type: "signal", id: `s${total++}`, to: b.welcome.connectionId, kind: "bye" });
    for (let i = 0; i < settings.roomSignalBurst; i++) signal();
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 10; i++) signal();
      // Its pong comes after every answer to the frames sent before it on a's socket.
      a.send({ type: "ping", id: `after-${round}` });
      await a.next("pong", (f) => f.id === `after-${round}`);
      if (a.received.some((f) => f.type === "error" && f.code === "rate_limited")) break;
    }
    expect(settings.roomRateStrikes).toBeGreaterThan(10);
    a.send({ type: "send", text: "chat is not starved" });
    expect((await b.next("message")).message.text).toBe("chat is not starved");
    const delivered = b.received.filter((f) => f.type === "signal").length;
    const refused = a.received.filter((f) => f.type === "error" && f.code === "rate_limited");
    // Every frame is accounted for: delivered, or refused by id (the burst plus what refilled meanwhile).
    expect(delivered + refused.length).toBe(total);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) expect(r).toMatchObject({ ref: "signal", id: expect.stringMatching(/^s\d+$/), retryAfterMs: expect.any(Number) });
    for (const c of [a, b]) c.close();
  }, 30_000);
});
