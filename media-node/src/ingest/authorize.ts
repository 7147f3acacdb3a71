// Who may publish: a known RTMP app, a stream key that cannot escape a path, and a publish token signed by the
// edge for exactly this stream, app and scope. Split in a synchronous part (names, checked before the key is
// reserved) and the asynchronous token check (WebCrypto HMAC), so the ingest wrapper can hold the
// one-publisher-per-key rule without races. The "already live" rule lives in the wrapper, which owns that state.

import { checkStreamId } from "../../../shared/names.ts";
import { type PublishClaims, type PublishTokenFailure, verifyPublishToken } from "../../../shared/tokens/publish-token.ts";

export interface PublishRequest {
  app: string;
  /** the stream key exactly as sent (without the query string) */
  name: string;
  token: string | undefined;
  /** node-media-server already ended the session because of the name's characters */
  rejectedByServer?: boolean;
}

/**
 * `node-full`: the node already encodes as many live streams as it can (MEDIA_MAX_LIVE_STREAMS); `node-draining`:
 * the node is draining for maintenance; `owned-elsewhere`: the stream is live on another node of the fleet
 */
export type RefusalReason = "unknown-app" | "bad-stream-key" | "already-live" | "node-full" | "node-draining" | "owned-elsewhere" | `token-${PublishTokenFailure}`;

export interface Refusal {
  ok: false;
  reason: RefusalReason;
  detail: string;
}

export type EarlyVerdict = { ok: true } | Refusal;
export type Verdict = { ok: true; claims: PublishClaims } | Refusal;

export interface PublishAuthorizer {
  /** names only; cheap and synchronous */
  check(request: PublishRequest): EarlyVerdict;
  /** the publish token */
  verify(request: PublishRequest): Promise<Verdict>;
}

export function createAuthorizer(opts: { apps: readonly string[]; secret: string; now?: () => number }): PublishAuthorizer {
  const apps = new Set(opts.apps);
  return {
    check(request) {
      if (!apps.has(request.app)) return { ok: false, reason: "unknown-app", detail: `RTMP app '${request.app.slice(0, 64)}' does not accept publishing (allowed: ${[...apps].join(", ")})` };
      const name = checkStreamId(request.name);
      if (!name.ok) return { ok: false, reason: "bad-stream-key", detail: name.reason };
      if (request.rejectedByServer) return { ok: false, reason: "bad-stream-key", detail: "stream key has characters outside [A-Za-z0-9_-]" };
      return { ok: true };
    },
    async verify(request) {
      const result = await verifyPublishToken(opts.secret, request.token, {
        streamId: request.name,
        app: request.app,
        ...(opts.now ? { nowS: Math.floor(opts.now() / 1000) } : {}),
      });
      if (!result.ok) return { ok: false, reason: `token-${result.reason}`, detail: result.message };
      return { ok: true, claims: result.claims };
    },
  };
}
