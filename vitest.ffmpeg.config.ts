import { defineConfig } from "vitest/config";
import { buildWeb } from "./web/build.ts";

// FFmpeg-heavy tests: real FFmpeg publishing real RTMP. One file at a time so they do not fight for the
// two cores (a live ladder needs most of one core to stay realtime).
// The Worker serves the pages from .build/web (wrangler `[assets]`): build them before anything starts it.
await buildWeb();

export default defineConfig({
  test: {
    include: ["**/*.ffmpeg.test.ts"],
    exclude: ["**/node_modules/**"],
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
