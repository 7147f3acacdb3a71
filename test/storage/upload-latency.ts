// Measures segment-finished → stored latency through the ReliableUploader to a local S3 server (s3rver) and
// the fs driver, with segment-sized files (a 2 s 720p rung at ~3 Mb/s ≈ 750 KB). Not a test: a script that
// prints one JSON line per driver. The target is p50 ≤ 100 ms to a local S3 server.
//
//   node test/storage/upload-latency.ts [segments=60] [bytes=750000]

import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadStorageConfig } from "../../media-node/src/storage/config.ts";
import { CACHE_CONTROL } from "../../media-node/src/storage/content-types.ts";
import { createObjectStore } from "../../media-node/src/storage/create-store.ts";
import type { ObjectStore } from "../../media-node/src/storage/types.ts";
import { ReliableUploader } from "../../media-node/src/storage/uploader.ts";
import { startS3 } from "../helpers/s3.ts";

const count = Number(process.argv[2] ?? 60);
const bytes = Number(process.argv[3] ?? 750_000);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function measure(driver: string, store: ObjectStore, work: string): Promise<void> {
  const uploader = new ReliableUploader(store);
  const latencies: number[] = [];
  uploader.on("uploaded", (e) => latencies.push(e.latencyMs));
  const payload = randomBytes(bytes);
  // One segment at a time, like one rung of one live stream: each is handed over when "finished".
  for (let i = 0; i < count; i++) {
    const path = join(work, `${driver}-${i}.m4s`);
    await writeFile(path, payload);
    await uploader.upload(`bench/${driver}/720p/seg_${i}.m4s`, path, { cacheControl: CACHE_CONTROL.immutable });
  }
  await uploader.close();
  await store.close();
  const sorted = latencies.slice(1).sort((a, b) => a - b); // the first one pays for connection setup
  console.log(
    JSON.stringify({
      driver,
      segments: count,
      segment_bytes: bytes,
      segment_upload_p50_ms: Math.round(percentile(sorted, 50) * 10) / 10,
      segment_upload_p95_ms: Math.round(percentile(sorted, 95) * 10) / 10,
      segment_upload_max_ms: Math.round((sorted.at(-1) ?? NaN) * 10) / 10,
    }),
  );
}

const work = await mkdtemp(join(tmpdir(), "pulsecast-upload-latency-"));
const s3 = await startS3();
try {
  await measure("s3", createObjectStore(loadStorageConfig(s3.env).store), work);
  await measure("fs", createObjectStore(loadStorageConfig({ STORAGE_FS_DIR: join(work, "fs-store") }).store), work);
} finally {
  await s3.stop();
  await rm(work, { recursive: true, force: true });
}
