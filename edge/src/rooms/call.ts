// The call of a small room: which connections are its peers, with their media state.
//
// Opt-in per connection: a connection becomes a peer with `call.join` and stops being one with `call.leave` or
// when its socket closes. The truth is each peer connection's attachment (ConnState.call), so the roster survives
// hibernation; the map here is a cache of it, built the first time a call frame (or a peer's close) needs it. A
// room whose clients never join a call never builds it, never sends a peer frame, and stores nothing for calls.
import type { CallPeer, MediaState } from "../../../shared/protocol/room.ts";
import type { ConnState } from "./presence.ts";

const OPEN = 1; // WebSocket.READY_STATE_OPEN

/** What a peer connection keeps in its attachment. */
export interface CallState {
  media: MediaState;
  /** unix ms it joined the call (orders the roster: the oldest peers first) */
  joinedAt: number;
}

interface PeerSocket {
  readonly id: string;
  readonly readyState: number;
  readonly state: unknown;
}

/** The peer a connection is, from its attachment. Pure. */
export function peerOf(connectionId: string, cs: ConnState, call: CallState): CallPeer {
  const peer: CallPeer = { connectionId, userId: cs.user.userId, role: cs.user.role, media: call.media, joinedAt: call.joinedAt };
  if (cs.user.name !== undefined) peer.name = cs.user.name;
  if (cs.user.avatar !== undefined) peer.avatar = cs.user.avatar;
  return peer;
}

export class CallRoster {
  private cache: Map<string, CallPeer> | null = null;
  private readonly sockets: () => Iterable<PeerSocket>;

  /** `sockets`: every socket of the room (read only when the roster is first needed after a start or a wake). */
  constructor(sockets: () => Iterable<PeerSocket>) {
    this.sockets = sockets;
  }

  /** Peers by connection id, oldest first. */
  peers(): Map<string, CallPeer> {
    if (!this.cache) {
      const found: CallPeer[] = [];
      for (const ws of this.sockets()) {
        const cs = ws.state as (ConnState & { call?: CallState }) | null;
        if (ws.readyState === OPEN && cs?.call) found.push(peerOf(ws.id, cs, cs.call));
      }
      found.sort((a, b) => a.joinedAt - b.joinedAt);
      this.cache = new Map(found.map((p) => [p.connectionId, p]));
    }
    return this.cache;
  }

  get(connectionId: string): CallPeer | undefined {
    return this.peers().get(connectionId);
  }

  /** Adds or replaces a peer (a re-join keeps its place and its joinedAt). */
  set(peer: CallPeer): void {
    this.peers().set(peer.connectionId, peer);
  }

  /** Removes a peer; returns it when it was one. */
  remove(connectionId: string): CallPeer | undefined {
    const peers = this.peers();
    const peer = peers.get(connectionId);
    if (peer) peers.delete(connectionId);
    return peer;
  }

  get size(): number {
    return this.peers().size;
  }
}
