// CallClient: a small WebRTC mesh call on a room's signaling (`call.*` frames and `signal`), for browsers.
//
// Every peer is one room connection. The newcomer sends the first offer to each peer its `call.welcome` lists; the
// others wait for it, so joining does not make both sides offer at once. Later offers (an ICE restart, a
// renegotiation) may still cross: each pair runs "perfect negotiation" — the peer whose connection id sorts higher
// is polite (it rolls its own offer back and answers), the other is impolite (it ignores the colliding offer and
// waits for the answer to its own). Either side restarts ICE when the connection fails, or stays disconnected
// past a grace period. Every peer connection carries three transceivers in a fixed order — microphone, camera,
// screen — so turning the camera off or sharing a screen swaps a track in place (no renegotiation) and the
// receiving side knows which track is which by its place. A room socket that drops is followed, once the room
// client is back (with a new connection id), by a rejoin that names the old id (`replaces`) and fresh peer
// connections to every peer; media is sent and received again as soon as they connect.
import type { CallPeer, MediaState, ServerFrameOf } from "../protocol/room.ts";
import { Emitter } from "./emitter.ts";
import type { RoomClient } from "./room-client.ts";
import type { IceCandidateInit, SignalRefusal } from "./signal-queue.ts";

export type { CallPeer, MediaState };

/** What GET /calls/ice-servers answers. */
export interface IceServersAnswer {
  iceServers: RTCIceServer[];
  /** unix seconds the TURN credentials in it expire */
  expiresAt?: number;
}

export interface CallClientOptions {
  room: RoomClient;
  /** ICE servers as they are, or a function that fetches them (fetchIceServers); fetched again before they expire */
  iceServers?: RTCIceServer[] | (() => Promise<IceServersAnswer>);
  /**
   * Who sends the first offer to a peer that just joined: the newcomer (default: no offers cross on a join), or
   * both sides at once (perfect negotiation settles the collision; slower to connect, kept for clients that do so).
   */
  initiator?: "newcomer" | "both";
  /** ICE restarts per peer connection before it is reported failed (a success resets the count); default 5 */
  maxIceRestarts?: number;
  /** how long a peer connection may stay `disconnected` before this side restarts ICE, ms; default 2500 */
  disconnectedGraceMs?: number;
  /** `relay`: media only through the TURN servers, so no peer learns another's addresses (default `all`) */
  iceTransportPolicy?: RTCIceTransportPolicy;
  /** RTCPeerConnection constructor (the browser's by default) */
  RTCPeerConnection?: typeof RTCPeerConnection;
}

export type CallState = "idle" | "joining" | "in-call" | "rejoining" | "left";
/** The three media slots every peer connection carries, in this order. */
export type Slot = "audio" | "camera" | "screen";

/** A remote peer as an app shows it. Streams are replaced when the peer connection is (after a rejoin). */
export interface RemotePeer {
  info: CallPeer;
  /** the peer's microphone and camera (one stream, for a <video> element) */
  camera: MediaStream;
  /** the peer's shared screen (live while `info.media.screen`) */
  screen: MediaStream;
  connectionState: RTCPeerConnectionState;
  polite: boolean;
}

export interface CallError {
  code: string;
  message: string;
  /** the call cannot go on (refused to join, or the room connection is gone for good) */
  fatal: boolean;
  /** the peer it concerns, for errors about one peer */
  connectionId?: string;
}

export interface CallClientEvents extends Record<string, unknown> {
  state: CallState;
  /** the peers changed (joined, left, new media state, new streams, connection state) */
  peers: ReadonlyMap<string, RemotePeer>;
  join: RemotePeer;
  leave: { connectionId: string; userId: string; reason: string };
  error: CallError;
}

/** Counters for tests and benchmarks. */
export interface CallStats {
  offersSent: number;
  answersSent: number;
  /** offers that crossed with one of this side's own (both sides offering at once) */
  glare: number;
  /** colliding offers this side ignored (it was impolite) */
  offersIgnored: number;
  /** colliding offers this side answered after rolling its own back (it was polite) */
  rollbacks: number;
  iceRestarts: number;
  candidatesSent: number;
  candidatesAdded: number;
  /** remote candidates that could not be added (not counting those of an ignored offer) */
  candidateErrors: number;
  rejoins: number;
}

const SLOTS: readonly Slot[] = ["audio", "camera", "screen"];

interface PeerConn {
  info: CallPeer;
  pc: RTCPeerConnection;
  /** incoming signals, handled one after another */
  chain: Promise<void>;
  makingOffer: boolean;
  ignoreOffer: boolean;
  settingRemoteAnswer: boolean;
  /** candidates that arrived before a remote description */
  pending: IceCandidateInit[];
  slots: Partial<Record<Slot, RTCRtpTransceiver>>;
  camera: MediaStream;
  screen: MediaStream;
  iceRestarts: number;
  graceTimer: ReturnType<typeof setTimeout> | null;
  closed: boolean;
}

/** GET <baseUrl>/calls/ice-servers with a bearer token. */
export async function fetchIceServers(baseUrl: string, token: string | (() => Promise<string>), fetchFn: typeof fetch = fetch.bind(globalThis)): Promise<IceServersAnswer> {
  const jwt = typeof token === "string" ? token : await token();
  const res = await fetchFn(`${baseUrl.replace(/\/+$/, "")}/calls/ice-servers`, { headers: { authorization: `Bearer ${jwt}` } });
  const body = (await res.json().catch(() => ({}))) as IceServersAnswer & { error?: { code?: string; message?: string } };
  if (!res.ok) throw Object.assign(new Error(body.error?.message ?? `ICE servers: HTTP ${res.status}`), { code: body.error?.code ?? "ice_servers_unavailable" });
  return body;
}

export class CallClient extends Emitter<CallClientEvents> {
  private readonly room: RoomClient;
  private readonly opts: CallClientOptions;
  private readonly Pc: typeof RTCPeerConnection;
  private readonly conns = new Map<string, PeerConn>();
  private readonly views = new Map<string, RemotePeer>();
  private readonly offs: (() => void)[] = [];
  private iceServers: RTCIceServer[] = [];
  private iceRefresh: ReturnType<typeof setTimeout> | null = null;
  private _state: CallState = "idle";
  private selfId: string | null = null;
  private joinId: string | null = null;
  private joinWaiter: { resolve(): void; reject(e: Error): void } | null = null;
  private readonly local: Record<Slot, MediaStreamTrack | null> = { audio: null, camera: null, screen: null };
  private _media: MediaState = { audio: false, video: false, screen: false };
  private readonly counters: CallStats = { offersSent: 0, answersSent: 0, glare: 0, offersIgnored: 0, rollbacks: 0, iceRestarts: 0, candidatesSent: 0, candidatesAdded: 0, candidateErrors: 0, rejoins: 0 };

  constructor(opts: CallClientOptions) {
    super();
    this.opts = opts;
    this.room = opts.room;
    const Pc = opts.RTCPeerConnection ?? (globalThis as { RTCPeerConnection?: typeof RTCPeerConnection }).RTCPeerConnection;
    if (!Pc) throw new Error("no RTCPeerConnection here: calls need a browser (or pass options.RTCPeerConnection)");
    this.Pc = Pc;
    if (Array.isArray(opts.iceServers)) this.iceServers = opts.iceServers;
    this.offs.push(
      this.room.on("call", (f) => this.onCallFrame(f)),
      this.room.on("signal", (f) => this.onSignal(f)),
      this.room.on("signalError", (e) => this.onSignalError(e)),
      this.room.on("welcome", (w) => this.onRoomWelcome(w)),
      this.room.on("error", (e) => e.fatal && this.inCall() && this.fail({ code: e.code, message: e.message, fatal: true })),
    );
  }

  // ---- state ---------------------------------------------------------------------------------------------

  get state(): CallState {
    return this._state;
  }
  /** this peer's connection id (the room connection's) while in the call */
  get connectionId(): string | null {
    return this.selfId;
  }
  get media(): MediaState {
    return this._media;
  }
  get peers(): ReadonlyMap<string, RemotePeer> {
    return this.views;
  }
  stats(): CallStats {
    return { ...this.counters };
  }
  /** The RTCPeerConnection to one peer (for getStats), while it exists. */
  peerConnection(connectionId: string): RTCPeerConnection | undefined {
    return this.conns.get(connectionId)?.pc;
  }
  /** The receiver of one slot from one peer (its getStats() has framesDecoded for video). */
  receiver(connectionId: string, slot: Slot): RTCRtpReceiver | undefined {
    return this.conns.get(connectionId)?.slots[slot]?.receiver;
  }

  // ---- actions -------------------------------------------------------------------------------------------

  /**
   * Joins the room's call with these tracks (either may be null: a call without a camera, or without a
   * microphone). Resolves once the room has answered (`call.welcome`); rejects when it refuses (call_full,
   * forbidden for viewers, ...). The room client must be connected.
   */
  async join(tracks: { audio?: MediaStreamTrack | null; camera?: MediaStreamTrack | null } = {}): Promise<void> {
    if (this._state === "in-call" || this._state === "joining") throw new Error("already in the call");
    this.local.audio = tracks.audio ?? null;
    this.local.camera = tracks.camera ?? null;
    this._media = { audio: Boolean(this.local.audio?.enabled), video: this.local.camera !== null, screen: this.local.screen !== null };
    if (typeof this.opts.iceServers === "function") await this.refreshIceServers();
    this.setState("joining");
    const joined = new Promise<void>((resolve, reject) => (this.joinWaiter = { resolve, reject }));
    this.sendJoin();
    return joined;
  }

  /** Leaves the call: the room tells the other peers, every peer connection closes. Local tracks are the app's. */
  leave(): void {
    if (this._state === "idle" || this._state === "left") return;
    if (this.room.state === "open") this.room.leaveCall();
    this.teardown("left");
  }

  /** Stops listening to the room as well (the room client stays the app's). */
  close(): void {
    this.leave();
    for (const off of this.offs.splice(0)) off();
  }

  /** Mutes or unmutes the microphone (the track keeps running; silence is sent while muted). */
  setMuted(muted: boolean): void {
    if (this.local.audio) this.local.audio.enabled = !muted;
    this.announce({ audio: !muted && this.local.audio !== null });
  }

  /**
   * Puts a track in a slot (null empties it: camera off, screen share stopped) on every peer connection, without
   * renegotiating, and tells the other peers. The caller owns the tracks (stops the old one when it wants to).
   */
  async setTrack(slot: Slot, track: MediaStreamTrack | null): Promise<void> {
    this.local[slot] = track;
    await Promise.all([...this.conns.values()].map((c) => c.slots[slot]?.sender.replaceTrack(track).catch(() => undefined)));
    if (slot === "audio") this.announce({ audio: track !== null && track.enabled });
    else if (slot === "camera") this.announce({ video: track !== null });
    else this.announce({ screen: track !== null });
  }

  /** Restarts ICE with one peer (or all): a new offer with fresh ICE credentials. */
  restartIce(connectionId?: string): void {
    for (const c of this.conns.values()) if (connectionId === undefined || c.info.connectionId === connectionId) this.iceRestart(c, true);
  }

  // ---- room frames ---------------------------------------------------------------------------------------

  private inCall(): boolean {
    return this._state === "joining" || this._state === "in-call" || this._state === "rejoining";
  }

  private sendJoin(replaces?: string): void {
    this.joinId = this.room.joinCall(this._media, replaces);
  }

  private onRoomWelcome(w: ServerFrameOf<"welcome">): void {
    if (!this.inCall() || w.connectionId === this.selfId) return;
    // A new room connection: the other peers knew this one by its old id. Rejoin under the new one, naming the
    // old so a server that has not noticed the drop yet retires it at once, and connect to everyone afresh.
    // (Also the first join of a client that asked to join before the room connection was up.)
    const old = this.selfId;
    if (old !== null) this.counters.rejoins++;
    for (const c of this.conns.values()) this.closeConn(c);
    this.setState("rejoining");
    this.sendJoin(old ?? undefined);
  }

  private onCallFrame(f: ServerFrameOf<"call.welcome" | "peer.join" | "peer.update" | "peer.leave" | "call.left">): void {
    if (!this.inCall()) return;
    switch (f.type) {
      case "call.welcome": {
        if (f.id !== undefined && f.id !== this.joinId) return;
        this.selfId = f.self.connectionId;
        const listed = new Set(f.peers.map((p) => p.connectionId));
        for (const [id, c] of this.conns) if (!listed.has(id)) this.dropPeer(id, c.info.userId, "gone");
        for (const p of f.peers) {
          const existing = this.conns.get(p.connectionId);
          if (existing && !existing.closed) {
            existing.info = p;
            continue;
          }
          // The newcomer offers to everyone already there. After a rejoin the peer keeps its place (a fresh
          // connection to it replaces the closed one without a leave).
          if (existing) this.conns.delete(p.connectionId);
          this.addPeer(p, true);
        }
        this.setState("in-call");
        this.joinWaiter?.resolve();
        this.joinWaiter = null;
        this.publish();
        return;
      }
      case "peer.join": {
        if (f.replaces) this.dropPeer(f.replaces, f.peer.userId, "replaced");
        const old = this.conns.get(f.peer.connectionId);
        if (old) this.dropPeer(f.peer.connectionId, f.peer.userId, "replaced");
        this.addPeer(f.peer, this.opts.initiator === "both");
        this.emit("join", this.views.get(f.peer.connectionId)!);
        this.publish();
        return;
      }
      case "peer.update": {
        const c = this.conns.get(f.peer.connectionId);
        if (!c) return;
        c.info = f.peer;
        this.publish();
        return;
      }
      case "peer.leave":
        this.dropPeer(f.connectionId, f.userId, f.reason);
        this.publish();
        return;
      case "call.left":
        // Retired by a newer connection of this user that named this one in its `replaces` (this client never
        // names one of its live connections, so another client of the user took over).
        if (f.reason === "replaced") this.fail({ code: "replaced", message: "You joined this call again from elsewhere; this window left it.", fatal: true });
        return;
    }
  }

  private onSignalError(e: SignalRefusal): void {
    if (e.frame.type === "call.join" && e.frame.id === this.joinId) {
      if (e.code === "disconnected") return; // the next room welcome rejoins
      const error: CallError = { code: e.code, message: e.message, fatal: true };
      const waiter = this.joinWaiter;
      this.joinWaiter = null;
      this.teardown("left");
      this.emit("error", error);
      waiter?.reject(Object.assign(new Error(e.message), { code: e.code }));
      return;
    }
    if (e.frame.type === "signal" && e.code === "peer_not_found") {
      // The peer's connection is gone; its peer.leave is on its way (or it already left).
      const c = this.conns.get(e.frame.to);
      if (c) this.dropPeer(e.frame.to, c.info.userId, "gone");
      this.publish();
      return;
    }
    if (e.code === "disconnected") return; // a rejoin follows, with fresh peer connections
    this.emit("error", { code: e.code, message: e.message, fatal: false, ...(e.frame.type === "signal" ? { connectionId: e.frame.to } : {}) });
  }

  private onSignal(f: ServerFrameOf<"signal">): void {
    const c = this.conns.get(f.from);
    // Only peers of the call: the room announces a peer (peer.join) before any signal of it can arrive.
    if (!c || c.closed) return;
    c.chain = c.chain.then(() => this.handleSignal(c, f)).catch((error: unknown) => {
      this.emit("error", { code: "negotiation_failed", message: `with ${c.info.name ?? c.info.userId}: ${(error as Error).message}`, fatal: false, connectionId: c.info.connectionId });
    });
  }

  private async handleSignal(c: PeerConn, f: ServerFrameOf<"signal">): Promise<void> {
    if (c.closed) return;
    const pc = c.pc;
    if (f.kind === "bye") {
      this.dropPeer(c.info.connectionId, c.info.userId, "bye");
      this.publish();
      return;
    }
    if (f.kind === "candidate") {
      if (!f.candidate) return;
      if (!pc.remoteDescription) {
        c.pending.push(f.candidate);
        return;
      }
      return this.addCandidate(c, f.candidate);
    }
    if (f.sdp === undefined) return;
    const polite = this.isPolite(c);
    const readyForOffer = !c.makingOffer && (pc.signalingState === "stable" || c.settingRemoteAnswer);
    const collision = f.kind === "offer" && !readyForOffer;
    c.ignoreOffer = !polite && collision;
    if (collision) this.counters.glare++;
    if (c.ignoreOffer) {
      this.counters.offersIgnored++;
      return;
    }
    if (collision) this.counters.rollbacks++;
    c.settingRemoteAnswer = f.kind === "answer";
    try {
      await pc.setRemoteDescription({ type: f.kind, sdp: f.sdp }); // rolls a colliding local offer back first
    } finally {
      c.settingRemoteAnswer = false;
    }
    if (f.kind === "offer") {
      await this.adoptSlots(c, true);
      await pc.setLocalDescription();
      this.counters.answersSent++;
      this.send(c, { kind: "answer", sdp: pc.localDescription!.sdp });
    } else {
      await this.adoptSlots(c, false);
    }
    const pending = c.pending.splice(0);
    for (const cand of pending) await this.addCandidate(c, cand);
  }

  private async addCandidate(c: PeerConn, candidate: IceCandidateInit): Promise<void> {
    try {
      await c.pc.addIceCandidate(candidate);
      this.counters.candidatesAdded++;
    } catch {
      // Candidates of an offer this side ignored are expected to fail; any other failure is counted.
      if (!c.ignoreOffer) this.counters.candidateErrors++;
    }
  }

  // ---- peer connections ----------------------------------------------------------------------------------

  private isPolite(c: PeerConn): boolean {
    return (this.selfId ?? "") > c.info.connectionId;
  }

  private addPeer(info: CallPeer, initiate: boolean): void {
    // One transport for all three slots from the first offer: nothing moves transports when the answer accepts
    // the bundle (with the default policy an offerer's video started seconds late), and a third of the candidates.
    const pc = new this.Pc({ iceServers: this.iceServers, bundlePolicy: "max-bundle", iceTransportPolicy: this.opts.iceTransportPolicy ?? "all" });
    const c: PeerConn = {
      info,
      pc,
      chain: Promise.resolve(),
      makingOffer: false,
      ignoreOffer: false,
      settingRemoteAnswer: false,
      pending: [],
      slots: {},
      camera: new MediaStream(),
      screen: new MediaStream(),
      iceRestarts: 0,
      graceTimer: null,
      closed: false,
    };
    this.conns.set(info.connectionId, c);
    pc.onnegotiationneeded = async () => {
      if (c.closed) return;
      try {
        c.makingOffer = true;
        await pc.setLocalDescription();
        if (pc.localDescription?.type !== "offer") return;
        this.counters.offersSent++;
        this.send(c, { kind: "offer", sdp: pc.localDescription.sdp });
      } catch (error) {
        this.emit("error", { code: "negotiation_failed", message: `offer to ${info.name ?? info.userId}: ${(error as Error).message}`, fatal: false, connectionId: info.connectionId });
      } finally {
        c.makingOffer = false;
      }
    };
    pc.onicecandidate = (ev) => {
      // The end-of-candidates marker (null) is not sent: trickle ICE works without it.
      if (!ev.candidate || c.closed) return;
      this.counters.candidatesSent++;
      this.send(c, { kind: "candidate", candidate: ev.candidate.toJSON() as IceCandidateInit });
    };
    pc.oniceconnectionstatechange = () => this.onIceState(c);
    pc.onconnectionstatechange = () => {
      if (c.closed) return;
      this.view(c).connectionState = pc.connectionState;
      if (pc.connectionState === "connected") c.iceRestarts = 0;
      this.publish();
    };
    if (initiate) {
      // Fixed order: microphone, camera, screen (the far side reads which is which from it).
      for (const slot of SLOTS) c.slots[slot] = pc.addTransceiver(this.local[slot] ?? (slot === "audio" ? "audio" : "video"), { direction: "sendrecv" });
      this.bindStreams(c);
    }
    this.views.set(info.connectionId, { info, camera: c.camera, screen: c.screen, connectionState: pc.connectionState, polite: this.isPolite(c) });
  }

  /**
   * After a remote description: the slots are the negotiated transceivers in m-line order (first audio, first and
   * second video). Transceivers of this side's own offer that a collision rolled back were never negotiated: they
   * are stopped, and this side's tracks go on the ones the remote offer made.
   */
  private async adoptSlots(c: PeerConn, remoteOffer: boolean): Promise<void> {
    const all = c.pc.getTransceivers();
    if (remoteOffer) for (const t of all) if (t.mid === null && t.currentDirection !== "stopped") t.stop();
    const live = all.filter((t) => t.mid !== null && t.currentDirection !== "stopped" && t.direction !== "stopped");
    const audio = live.find((t) => t.receiver.track.kind === "audio");
    const videos = live.filter((t) => t.receiver.track.kind === "video");
    const slots: Partial<Record<Slot, RTCRtpTransceiver>> = { ...(audio ? { audio } : {}), ...(videos[0] ? { camera: videos[0] } : {}), ...(videos[1] ? { screen: videos[1] } : {}) };
    const changed = SLOTS.some((s) => slots[s] !== c.slots[s]);
    c.slots = slots;
    if (changed) this.bindStreams(c);
    await Promise.all(
      SLOTS.map(async (slot) => {
        const t = slots[slot];
        if (!t) return;
        if (t.direction !== "sendrecv") t.direction = "sendrecv";
        if (t.sender.track !== this.local[slot]) await t.sender.replaceTrack(this.local[slot]).catch(() => undefined);
      }),
    );
  }

  /** The peer's streams from its slots' receivers (new stream objects, so a <video> sees the change). */
  private bindStreams(c: PeerConn): void {
    const tracks = (slots: Slot[]) => slots.map((s) => c.slots[s]?.receiver.track).filter((t): t is MediaStreamTrack => t !== undefined);
    c.camera = new MediaStream(tracks(["audio", "camera"]));
    c.screen = new MediaStream(tracks(["screen"]));
    const v = this.views.get(c.info.connectionId);
    if (v) {
      v.camera = c.camera;
      v.screen = c.screen;
    }
    this.publish();
  }

  private onIceState(c: PeerConn): void {
    if (c.closed) return;
    const s = c.pc.iceConnectionState;
    if (c.graceTimer && s !== "disconnected") {
      clearTimeout(c.graceTimer);
      c.graceTimer = null;
    }
    if (s === "failed") this.iceRestart(c, false);
    else if (s === "disconnected" && !c.graceTimer) {
      // Often transient (a moment of loss): give it a little time before a restart.
      c.graceTimer = setTimeout(() => {
        c.graceTimer = null;
        if (!c.closed && c.pc.iceConnectionState === "disconnected") this.iceRestart(c, false);
      }, this.opts.disconnectedGraceMs ?? 2500);
    }
  }

  private iceRestart(c: PeerConn, asked: boolean): void {
    if (c.closed) return;
    // Signaling is down: the rejoin after the room reconnects makes new connections anyway.
    if (this.room.state !== "open") return;
    if (!asked && c.iceRestarts >= (this.opts.maxIceRestarts ?? 5)) {
      this.emit("error", { code: "peer_unreachable", message: `no media path to ${c.info.name ?? c.info.userId} after ${c.iceRestarts} ICE restarts`, fatal: false, connectionId: c.info.connectionId });
      return;
    }
    c.iceRestarts++;
    this.counters.iceRestarts++;
    c.pc.restartIce(); // fires negotiationneeded: an offer with new ICE credentials
  }

  private send(c: PeerConn, message: { kind: "offer" | "answer" | "candidate" | "bye"; sdp?: string; candidate?: IceCandidateInit }): void {
    this.room.signal(c.info.connectionId, message);
  }

  private closeConn(c: PeerConn): void {
    if (c.closed) return;
    c.closed = true;
    if (c.graceTimer) clearTimeout(c.graceTimer);
    c.pc.onnegotiationneeded = c.pc.onicecandidate = c.pc.oniceconnectionstatechange = c.pc.onconnectionstatechange = null;
    c.pc.close();
  }

  private dropPeer(connectionId: string, userId: string, reason: string): void {
    const c = this.conns.get(connectionId);
    if (!c) return;
    this.closeConn(c);
    this.conns.delete(connectionId);
    this.views.delete(connectionId);
    this.emit("leave", { connectionId, userId, reason });
  }

  private view(c: PeerConn): RemotePeer {
    return this.views.get(c.info.connectionId)!;
  }

  private publish(): void {
    for (const c of this.conns.values()) {
      const v = this.views.get(c.info.connectionId);
      if (v) v.info = c.info;
    }
    this.emit("peers", this.views);
  }

  private announce(change: Partial<MediaState>): void {
    const next = { ...this._media, ...change };
    if (next.audio === this._media.audio && next.video === this._media.video && next.screen === this._media.screen) return;
    this._media = next;
    if (this._state === "in-call") this.room.updateCall(next);
  }

  private async refreshIceServers(): Promise<void> {
    const source = this.opts.iceServers;
    if (typeof source !== "function") return;
    if (this.iceRefresh) clearTimeout(this.iceRefresh);
    this.iceRefresh = null;
    try {
      const answer = await source();
      this.iceServers = answer.iceServers;
      // New peer connections and ICE restarts use them; running ones keep the allocation they have.
      for (const c of this.conns.values()) c.pc.setConfiguration({ ...c.pc.getConfiguration(), iceServers: this.iceServers });
      if (answer.expiresAt !== undefined) {
        const inMs = Math.max(10_000, (answer.expiresAt * 1000 - Date.now()) * 0.8);
        this.iceRefresh = setTimeout(() => void this.refreshIceServers(), inMs);
      }
    } catch (error) {
      // Without them, host candidates still connect peers that can reach each other directly.
      this.emit("error", { code: (error as { code?: string }).code ?? "ice_servers_unavailable", message: `ICE servers: ${(error as Error).message}`, fatal: false });
    }
  }

  private teardown(state: CallState): void {
    for (const c of this.conns.values()) this.closeConn(c);
    this.conns.clear();
    this.views.clear();
    if (this.iceRefresh) clearTimeout(this.iceRefresh);
    this.iceRefresh = null;
    this.selfId = null;
    this.joinId = null;
    this.setState(state);
    this.publish();
  }

  private fail(error: CallError): void {
    this.teardown("left");
    this.emit("error", error);
  }

  private setState(state: CallState): void {
    if (state === this._state) return;
    this._state = state;
    this.emit("state", state);
  }
}
