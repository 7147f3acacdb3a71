import { defineConfig } from "vitest/config";
import { buildWeb } from "./web/build.ts";

// Node-side tests: ./shared, the media node, bridges, and cross-part tests that start real processes
// (wrangler dev, nats-server) on 127.0.0.1 and free ports. They run in parallel, two at a time (2 cores).
// Tests that run FFmpeg are named *.ffmpeg.test.ts and run one at a time (vitest.ffmpeg.config.ts).
// The Worker serves the pages from .build/web (wrangler `[assets]`): build them before anything starts it.
await buildWeb();

export default defineConfig({
  test: {
    include: ["shared/**/*.test.ts", "media-node/**/*.test.ts", "test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/*.ffmpeg.test.ts"],
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
