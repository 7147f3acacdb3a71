// Admission and deadlines for raw connections on the RTMP/RTMPS port, before node-media-server sees a byte.
// node-media-server keeps every socket open for as long as the peer likes: an idle socket, half an RTMP
// handshake or a stream of garbage each held a connection (and its memory) forever. Here every connection
// must reach an accepted publish or play within the handshake timeout or it is destroyed, and connections
// over the per-address or total cap are destroyed as they arrive. Refusals are reported with a reason.

import { isIP, type Socket } from "node:net";

export interface ConnectionLimits {
  handshakeTimeoutMs: number;
  maxConnectionsPerAddress: number;
  maxConnections: number;
}

export type ConnectionRefusalReason = "address-limit" | "total-limit" | "handshake-timeout";

export interface ConnectionRefusal {
  reason: ConnectionRefusalReason;
  /** the remote address (no port) */
  address: string;
  detail: string;
}

/** The address as one key per host: IPv4-mapped IPv6 ("::ffff:1.2.3.4") reads as the IPv4 address. */
export function normalizeAddress(address: string | undefined): string {
  if (!address) return "";
  const lower = address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  return mapped ? mapped[1]! : lower;
}

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms: a peer on this host. */
export function isLoopback(address: string | undefined): boolean {
  const a = normalizeAddress(address);
  if (isIP(a) === 4) return a.startsWith("127.");
  if (isIP(a) === 6) return a === "::1" || a === "0:0:0:0:0:0:0:1";
  return false;
}

/**
 * The addresses the node's own FFmpeg and ffprobe pulls arrive from. They connect to the listener's loopback
 * address (127.0.0.1 for a wildcard listener), and Linux picks 127.0.0.1 (or ::1) as the source of a connection
 * to any loopback address, so these two are the node itself. Other loopback addresses (127.0.0.2, …) are treated
 * like any other host: only the node is trusted, not everything that can reach the loopback interface.
 */
export function isNodeSelf(address: string | undefined): boolean {
  const a = normalizeAddress(address);
  return a === "127.0.0.1" || a === "::1" || a === "0:0:0:0:0:0:0:1";
}

/** Whether one more connection from `address` is admitted, given what is open now. The node's own pulls are never capped. */
export function admission(
  address: string,
  open: { fromAddress: number; remoteTotal: number },
  limits: Pick<ConnectionLimits, "maxConnectionsPerAddress" | "maxConnections">,
): { ok: true } | { ok: false; reason: "address-limit" | "total-limit"; detail: string } {
  if (isNodeSelf(address)) return { ok: true };
  if (open.fromAddress >= limits.maxConnectionsPerAddress) {
    return { ok: false, reason: "address-limit", detail: `${open.fromAddress} connections already open from this address (limit ${limits.maxConnectionsPerAddress})` };
  }
  if (open.remoteTotal >= limits.maxConnections) {
    return { ok: false, reason: "total-limit", detail: `${open.remoteTotal} connections already open from other hosts (limit ${limits.maxConnections})` };
  }
  return { ok: true };
}

interface Tracked {
  address: string;
  timer: NodeJS.Timeout | undefined;
}

/** The key of one TCP connection, equal for the raw socket and a TLS socket wrapping it. */
function connectionKey(socket: Pick<Socket, "remoteAddress" | "remotePort">): string {
  return `${normalizeAddress(socket.remoteAddress)}|${socket.remotePort ?? ""}`;
}

export class ConnectionGate {
  readonly #limits: ConnectionLimits;
  readonly #onRefused: (refusal: ConnectionRefusal) => void;
  readonly #open = new Map<string, Tracked>();
  readonly #perAddress = new Map<string, number>();
  #remoteTotal = 0;

  constructor(limits: ConnectionLimits, onRefused: (refusal: ConnectionRefusal) => void) {
    this.#limits = limits;
    this.#onRefused = onRefused;
  }

  /**
   * Call on every new raw connection. Returns false (and has destroyed the socket) when it is over a cap;
   * otherwise it is tracked until it closes and destroyed unless `established` is called in time.
   */
  admit(socket: Socket): boolean {
    const address = normalizeAddress(socket.remoteAddress);
    const self = isNodeSelf(address);
    const verdict = admission(address, { fromAddress: this.#perAddress.get(address) ?? 0, remoteTotal: this.#remoteTotal }, this.#limits);
    if (!verdict.ok) {
      socket.on("error", () => {});
      socket.destroy();
      this.#onRefused({ reason: verdict.reason, address, detail: verdict.detail });
      return false;
    }
    const key = connectionKey(socket);
    const tracked: Tracked = { address, timer: undefined };
    this.#open.set(key, tracked);
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
    if (!self) this.#remoteTotal++;
    tracked.timer = setTimeout(() => {
      tracked.timer = undefined;
      socket.on("error", () => {});
      socket.destroy();
      this.#onRefused({ reason: "handshake-timeout", address, detail: `no accepted publish or play within ${this.#limits.handshakeTimeoutMs} ms` });
    }, this.#limits.handshakeTimeoutMs);
    tracked.timer.unref();
    socket.once("close", () => {
      clearTimeout(tracked.timer);
      if (this.#open.get(key) === tracked) this.#open.delete(key);
      const n = (this.#perAddress.get(address) ?? 1) - 1;
      if (n > 0) this.#perAddress.set(address, n);
      else this.#perAddress.delete(address);
      if (!self) this.#remoteTotal--;
    });
    return true;
  }

  /** The connection reached an accepted publish or play: it is no longer subject to the handshake timeout. */
  established(socket: Pick<Socket, "remoteAddress" | "remotePort"> | undefined): void {
    if (!socket) return;
    const tracked = this.#open.get(connectionKey(socket));
    if (tracked) {
      clearTimeout(tracked.timer);
      tracked.timer = undefined;
    }
  }

  /** Connections open now: all of them, and those from other hosts (the ones the total cap counts). */
  stats(): { open: number; remote: number } {
    return { open: this.#open.size, remote: this.#remoteTotal };
  }

  /** Stops every pending deadline (the server is stopping and destroys the sockets itself). */
  close(): void {
    for (const tracked of this.#open.values()) clearTimeout(tracked.timer);
  }
}
