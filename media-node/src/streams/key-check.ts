// Stream keys of streams made through the edge's Streams API: publish tokens that carry a key version (`kv`).
// The HMAC proves the edge minted the key; whether it is still the current one (not rotated away, stream not
// disabled or deleted) only the edge knows, so the node asks it.
//
// The rule when the edge cannot be asked (network error, timeout, 5xx, or it refuses the node's token):
// a key whose signature verifies is accepted, unless this node has already learned better from the edge: it
// remembers, per stream, the latest verdict the edge gave it (current key version; disabled; deleted) and
// refuses older key versions and keys of streams it learned are disabled or deleted. A node that never heard
// of a revocation therefore accepts the old key while the edge is down; the key watch (key-watch.ts) cuts the
// publisher as soon as the edge answers again. Tokens without `kv` (minted on the command line) are not
// Streams API keys and are not checked with the edge.
import type { PublishClaims } from "../../../shared/tokens/publish-token.ts";
import type { PublishAuthorizer, Refusal, Verdict } from "../ingest/authorize.ts";
import type { Logger } from "../log.ts";

export type EdgeVerdict =
  | { ok: true; keyVersion: number; record?: boolean; latencyMode?: "normal" | "low" }
  | { ok: false; reason: "unknown-stream" | "deleted" | "disabled" | "revoked-key"; keyVersion?: number };

/** The edge could not be asked; the offline rule applies. */
export class EdgeUnreachableError extends Error {
  override name = "EdgeUnreachableError";
}

export interface KeyCheckClient {
  /** one verdict per key, in order; throws EdgeUnreachableError when the edge cannot answer */
  check(keys: { streamId: string; kv: number }[]): Promise<EdgeVerdict[]>;
}

/** Asks the edge over HTTP (`POST <edge>/internal/streams/key-check`, internal bearer token). */
export function httpKeyCheckClient(opts: { edgeUrl: string; internalToken: string; timeoutMs: number }): KeyCheckClient {
  const endpoint = `${opts.edgeUrl.replace(/\/+$/, "")}/internal/streams/key-check`;
  return {
    async check(keys) {
      let res: Response;
      try {
        res = await fetch(endpoint, {
          method: "POST",
          headers: { authorization: `Bearer ${opts.internalToken}`, "content-type": "application/json" },
          body: JSON.stringify({ keys }),
          signal: AbortSignal.timeout(opts.timeoutMs),
        });
      } catch (error) {
        throw new EdgeUnreachableError(`key check: ${(error as Error).message}`, { cause: error });
      }
      if (res.status !== 200) {
        const text = (await res.text().catch(() => "")).slice(0, 200);
        throw new EdgeUnreachableError(`key check: the edge answered ${res.status} ${text}`);
      }
      const body = (await res.json().catch(() => null)) as { results?: unknown } | null;
      const results = Array.isArray(body?.results) ? (body.results as EdgeVerdict[]) : null;
      if (!results || results.length !== keys.length || !results.every((r) => typeof r === "object" && r !== null && typeof r.ok === "boolean")) {
        throw new EdgeUnreachableError("key check: the edge's answer is malformed");
      }
      return results;
    },
  };
}

/** What this node learned from the edge, per stream (in memory: a restarted node starts knowing nothing). */
export class KeyRegistry {
  readonly #known = new Map<string, { keyVersion?: number; gone?: "disabled" | "deleted" }>();
  static readonly MAX = 100_000;

  learn(streamId: string, verdict: EdgeVerdict): void {
    if (this.#known.size >= KeyRegistry.MAX && !this.#known.has(streamId)) this.#known.delete(this.#known.keys().next().value!);
    if (verdict.ok) this.#known.set(streamId, { keyVersion: verdict.keyVersion });
    else if (verdict.reason === "disabled" || verdict.reason === "deleted") this.#known.set(streamId, { ...(verdict.keyVersion !== undefined ? { keyVersion: verdict.keyVersion } : {}), gone: verdict.reason });
    else if (verdict.reason === "revoked-key" && verdict.keyVersion !== undefined) this.#known.set(streamId, { keyVersion: verdict.keyVersion });
  }

  /** The offline rule: null when the key may publish, else why not. */
  offline(streamId: string, kv: number): string | null {
    const k = this.#known.get(streamId);
    if (!k) return null;
    if (k.gone) return `the stream was ${k.gone} (learned from the edge earlier)`;
    if (k.keyVersion !== undefined && kv < k.keyVersion) return `key version ${kv} was replaced by ${k.keyVersion} (learned from the edge earlier)`;
    return null;
  }
}

/** Why the edge refused a key, for logs and the publisher's refusal. */
export function refusalText(v: Extract<EdgeVerdict, { ok: false }>, kv: number): string {
  switch (v.reason) {
    case "revoked-key":
      return `stream key version ${kv} was revoked (current: ${v.keyVersion ?? "?"})`;
    case "disabled":
      return "the stream is disabled";
    case "deleted":
      return "the stream was deleted";
    case "unknown-stream":
      return "the edge knows no such stream";
  }
}

export interface KeyChecker {
  /** online verdict with the offline rule as fallback; `online` says which applied */
  /** `record`, `latency`: the stream's recording and latency settings, when the edge said them */
  decide(streamId: string, kv: number): Promise<{ ok: true; online: boolean; record?: boolean; latency?: "normal" | "low" } | { ok: false; online: boolean; detail: string }>;
}

export function createKeyChecker(client: KeyCheckClient, registry: KeyRegistry, log: Logger): KeyChecker {
  return {
    async decide(streamId, kv) {
      try {
        const [verdict] = await client.check([{ streamId, kv }]);
        registry.learn(streamId, verdict!);
        if (!verdict!.ok) return { ok: false, online: true, detail: refusalText(verdict!, kv) };
        const v = verdict!;
        return { ok: true, online: true, ...(typeof v.record === "boolean" ? { record: v.record } : {}), ...(v.latencyMode === "low" || v.latencyMode === "normal" ? { latency: v.latencyMode } : {}) };
      } catch (error) {
        if (!(error instanceof EdgeUnreachableError)) throw error;
        const why = registry.offline(streamId, kv);
        log.warn("edge unreachable: stream key checked offline", { streamId, kv, accepted: why === null, error: error.message });
        return why === null ? { ok: true, online: false } : { ok: false, online: false, detail: why };
      }
    },
  };
}

/** Claims of a Streams API key (those carry `kv`). */
export function keyVersionOf(claims: PublishClaims): number | undefined {
  return typeof claims.kv === "number" ? claims.kv : undefined;
}

/**
 * The ingest's authorizer with the edge's key check after the signature check. This is the whole hook the
 * ingest needs: `authorize: withKeyCheck(createAuthorizer(...), checker)`.
 */
export function withKeyCheck(inner: PublishAuthorizer, checker: KeyChecker): PublishAuthorizer {
  return {
    check: (request) => inner.check(request),
    async verify(request): Promise<Verdict> {
      const verdict = await inner.verify(request);
      if (!verdict.ok) return verdict;
      const kv = keyVersionOf(verdict.claims);
      if (kv === undefined) return verdict;
      const decision = await checker.decide(request.name, kv);
      // The stream's recording and latency settings live at the edge (they can change without a new key).
      if (decision.ok) {
        const claims = { ...verdict.claims };
        if (decision.record !== undefined) claims.rec = decision.record;
        if (decision.latency !== undefined) claims.lat = decision.latency;
        return { ok: true, claims };
      }
      const refusal: Refusal = { ok: false, reason: "token-revoked", detail: decision.detail };
      return refusal;
    },
  };
}
