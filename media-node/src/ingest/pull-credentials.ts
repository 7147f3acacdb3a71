// Who may play from the RTMP port: only the node's own FFmpeg and ffprobe. Viewers use HLS.
//
// The credential travels in FFmpeg's command line, so every local user can read it in `ps`. What limits it:
// - it names one stream: a credential minted for stream A plays nothing else;
// - it is single-use: it admits exactly one play (one FFmpeg or ffprobe start); the next start gets a new one;
// - it expires when unused for `ttlMs`, and every unused credential of a stream is revoked when its publisher
//   leaves;
// - it is accepted only from the node's own address (127.0.0.1 or ::1), so it is worthless elsewhere even if it leaks;
// - a credential presented wrongly (another stream, another host) has leaked and is revoked.

import { randomBytes } from "node:crypto";
import { isNodeSelf, normalizeAddress } from "./connection-gate.ts";

export type PullRefusalReason = "play-not-allowed" | "pull-not-loopback" | "pull-unknown" | "pull-expired" | "pull-wrong-stream";

export interface PullRequest {
  /** "/<app>/<stream>" the player asked for */
  path: string;
  /** the `pull` query parameter, if any */
  credential: string | undefined;
  /** the player's remote address */
  remoteAddress: string | undefined;
}

export type PullVerdict = { ok: true } | { ok: false; reason: PullRefusalReason; detail: string };

interface Issued {
  path: string;
  expiresAt: number;
}

export class PullCredentials {
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #issued = new Map<string, Issued>();

  constructor(opts: { ttlMs: number; now?: () => number }) {
    this.#ttlMs = opts.ttlMs;
    this.#now = opts.now ?? Date.now;
  }

  /** A new credential for one play of `path` ("/<app>/<stream>"). */
  issue(path: string): string {
    this.#sweep();
    const credential = randomBytes(18).toString("base64url");
    this.#issued.set(credential, { path, expiresAt: this.#now() + this.#ttlMs });
    return credential;
  }

  /** Decides one play; a valid credential is used up by it. */
  check(request: PullRequest): PullVerdict {
    const { credential } = request;
    if (!credential) return { ok: false, reason: "play-not-allowed", detail: "RTMP play is for the node's own transcoder; viewers use HLS" };
    const issued = this.#issued.get(credential);
    if (!isNodeSelf(request.remoteAddress)) {
      if (issued) this.#issued.delete(credential);
      return { ok: false, reason: "pull-not-loopback", detail: `pull credentials are accepted only from the node itself (127.0.0.1 or ::1), not from ${normalizeAddress(request.remoteAddress).slice(0, 64) || "an unknown address"}${issued ? "; the credential is revoked" : ""}` };
    }
    if (!issued) return { ok: false, reason: "pull-unknown", detail: "pull credential unknown, already used or revoked" };
    this.#issued.delete(credential);
    if (issued.path !== request.path) return { ok: false, reason: "pull-wrong-stream", detail: `pull credential is for another stream; it is revoked` };
    if (this.#now() >= issued.expiresAt) return { ok: false, reason: "pull-expired", detail: `pull credential expired ${this.#now() - issued.expiresAt} ms ago` };
    return { ok: true };
  }

  /** Revokes every unused credential for `path` (its publisher left: nothing more to pull). */
  revokePath(path: string): void {
    for (const [credential, issued] of this.#issued) if (issued.path === path) this.#issued.delete(credential);
  }

  /** Unused credentials held now. */
  get size(): number {
    return this.#issued.size;
  }

  /** Expired credentials are kept one more TTL (so a late use reads as "expired", not "unknown"), then dropped. */
  #sweep(): void {
    const now = this.#now();
    for (const [credential, issued] of this.#issued) if (now >= issued.expiresAt + this.#ttlMs) this.#issued.delete(credential);
  }
}
