import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { buildWeb } from "../web/build.ts";

// The Worker serves the pages from .build/web (wrangler `[assets]`): build them before anything starts it.
await buildWeb();

// Edge tests run inside workerd (the real Workers runtime), with the bindings from wrangler.toml.
// Secrets are test-only values here; real ones come from .dev.vars / `wrangler secret put`.
export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "../wrangler.toml" },
      miniflare: {
        bindings: {
          JWT_SECRET: "test-jwt-secret-0123456789abcdef0123456789",
          PUBLISH_TOKEN_SECRET: "test-publish-secret-0123456789abcdef",
          EDGE_INGRESS_SECRET: "test-edge-ingress-secret-0123456789",
          BRIDGE_INGRESS_SECRET: "test-bridge-ingress-secret-0123456789",
          INTERNAL_API_TOKEN: "test-internal-token-0123456789abcdef",
          // The first key signs viewer tokens, the second still verifies (rotation).
          PLAYBACK_SIGNING_KEYS: "k2:test-playback-key-two-0123456789abcdef k1:test-playback-key-one-0123456789abcdef",
          // Local test links are http:; the link policy itself is tested with an env that sets it false.
          ALLOW_HTTP_URLS: "true",
          // Rooms named big-* are big rooms: 4 shards under 2 relays, so every big-room test crosses the whole tree.
          ROOM_SHARDED: "big-*",
          // A small room grows big at 12 connections here (2,000 by default), so a test can cross the threshold.
          ROOM_SHARD_AT: "12",
          ROOM_SHARDS: "4",
          ROOM_RELAY_FANOUT: "2",
          // Summaries every 200 ms rather than every second, so presence tests wait less.
          ROOM_SUMMARY_MS: "200",
          // A test-only VAPID pair, so the push routes are on; pushes are sent only to subscriptions a test adds.
          VAPID_PUBLIC_KEY: "BD-h2GOQvz_PGNJzVgY3N-pMG0BGpv9KuYFOnCSkrNlbAy0Id9atMlSx2IppFD87jr7jFEPmHkBAJzOVu8UIFMU",
          VAPID_PRIVATE_KEY: "i7d3WTroQEQ8Z4RpIJtn_i3ubUsS3CG-9r6alHTTxAI",
          UNSUBSCRIBE_SECRET: "test-unsubscribe-secret-0123456789abcdef",
        },
      },
    }),
  ],
  test: {
    root: import.meta.dirname,
    include: ["**/*.test.ts"],
    exclude: ["**/node_modules/**"],
  },
});
