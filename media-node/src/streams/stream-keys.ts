// Stream-key checks wired into a media node: the authorizer wrapper for new publishes and the watch that
// cuts live publishers whose key was revoked. Off (offline HMAC checks only) when STREAM_KEYS_EDGE_URL is unset.
import type { AuthorizedPublish, RtmpIngest } from "../ingest/rtmp-server.ts";
import type { PublishAuthorizer } from "../ingest/authorize.ts";
import type { LiveManager } from "../live/manager.ts";
import type { Logger } from "../log.ts";
import { createKeyChecker, httpKeyCheckClient, type KeyCheckClient, keyVersionOf, KeyRegistry, withKeyCheck } from "./key-check.ts";
import { KeyWatch, type WatchedPublish } from "./key-watch.ts";
import type { StreamKeySettings } from "../settings/stream-keys.ts";

export interface StreamKeys {
  wrap(inner: PublishAuthorizer): PublishAuthorizer;
  /** follows the ingest's publishes and starts the watch */
  attach(ingest: RtmpIngest, live: LiveManager): void;
  /** one watch round now (tests) */
  checkNow(): Promise<string[]>;
  stop(): Promise<void>;
}

export function createStreamKeys(settings: StreamKeySettings, log: Logger, client?: KeyCheckClient): StreamKeys | undefined {
  if (!settings.edgeUrl && !client) return undefined;
  if (!client && !settings.internalToken) throw new Error("STREAM_KEYS_EDGE_URL is set but INTERNAL_API_TOKEN is not: the node cannot ask the edge about stream keys");
  const keyLog = log.child({ component: "stream-keys" });
  const edge = client ?? httpKeyCheckClient({ edgeUrl: settings.edgeUrl!, internalToken: settings.internalToken!, timeoutMs: settings.timeoutMs });
  const registry = new KeyRegistry();
  const checker = createKeyChecker(edge, registry, keyLog);
  const watched = new Map<string, WatchedPublish & { sessionId: string }>();
  let watch: KeyWatch | undefined;
  return {
    wrap: (inner) => withKeyCheck(inner, checker),
    attach(ingest, live) {
      ingest.on("publish", (p: AuthorizedPublish) => {
        const kv = keyVersionOf(p.claims);
        if (kv !== undefined) watched.set(p.streamId, { streamId: p.streamId, kv, sessionId: p.sessionId });
      });
      ingest.on("unpublish", (u) => {
        if (watched.get(u.streamId)?.sessionId === u.sessionId) watched.delete(u.streamId);
      });
      watch = new KeyWatch({
        client: edge,
        registry,
        intervalMs: settings.intervalMs,
        log: keyLog,
        live: () => [...watched.values()].map(({ streamId, kv }) => ({ streamId, kv })),
        async cut(streamId) {
          const entry = watched.get(streamId);
          watched.delete(streamId);
          const kicked = await live.kick(streamId);
          if (!kicked && entry) ingest.disconnect(entry.sessionId);
        },
      });
      watch.start();
    },
    checkNow: () => watch?.tick() ?? Promise.resolve([]),
    async stop() {
      await watch?.stop();
    },
  };
}
