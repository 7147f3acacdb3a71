// The edge on bare Miniflare (workerd without wrangler dev's proxy in front), built the way it deploys:
// `wrangler deploy --dry-run --outdir` bundles edge/src exactly as production gets it.
//
// Why the bench defaults to this rather than `wrangler dev` (test/helpers/edge.ts): wrangler dev puts a
// proxy worker in a second workerd process in front of the Worker, so every frame crosses one more process
// and that proxy's memory and CPU are not the room's. Measured back to back here (1,000 clients, 2 cores
// shared with other work, load ~10): burst 219k-310k vs 228k-508k deliveries/s, paced p99 245-257 vs
// 225-309 ms, workerd RSS 364 vs 821 MB (Miniflare vs wrangler dev). Throughput and latency are within the
// noise of this machine; the RSS is not, and only the bare runtime's RSS answers "what does a full room
// cost". The Worker code is the same bundle `wrangler deploy` uploads.
// BENCH_RUNTIME=wrangler runs the bench against wrangler dev instead.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { V4MiniflareOptions } from "miniflare";
import { buildWeb } from "../../../web/build.ts";
import { ROOT, TEST_SECRETS, TEST_VARS } from "../../helpers/edge.ts";
import { freePort } from "../../helpers/ports.ts";
import { run } from "../../helpers/process.ts";
import { workerdPidsUnder } from "./proc-memory.ts";

export interface BenchEdge {
  url: string;
  wsUrl: string;
  /** the workerd processes serving it (for RSS) */
  workerdPids(): number[];
  stop(): Promise<void>;
}

/** Reads `compatibility_date` from wrangler.toml so the bench runs what deploys. */
async function compatibilityDate(): Promise<string> {
  const { readFile } = await import("node:fs/promises");
  const toml = await readFile(join(ROOT, "wrangler.toml"), "utf8");
  const m = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(toml);
  if (!m?.[1]) throw new Error("wrangler.toml has no compatibility_date");
  return m[1];
}

/** Where wrangler's own Miniflare is (see wranglersMiniflare). */
function miniflarePath(): string {
  return createRequire(join(ROOT, "node_modules/wrangler/package.json")).resolve("miniflare");
}
/**
 * Miniflare as wrangler itself uses it: wrangler pins its own version (with its workerd), which can be newer
 * than the one hoisted for @cloudflare/vitest-plugin, and the bench should run the runtime wrangler runs.
 */
async function wranglersMiniflare(): Promise<typeof import("miniflare")> {
  return (await import(pathToFileURL(miniflarePath()).href)) as typeof import("miniflare");
}

/**
 * Makes the next Miniflare run workerd with V8's GC trace, line-buffered. Miniflare takes both from the
 * environment (MINIFLARE_WORKERD_V8_FLAGS, MINIFLARE_WORKERD_PATH); the wrapper script lives in `dir`.
 */
async function traceGc(dir: string): Promise<void> {
  const { chmod, writeFile } = await import("node:fs/promises");
  const workerd = (createRequire(miniflarePath())("workerd") as { default: string }).default;
  const wrapper = join(dir, "workerd-line-buffered.sh");
  await writeFile(wrapper, `#!/bin/sh\nexec stdbuf -oL -eL ${JSON.stringify(workerd)} "$@"\n`);
  await chmod(wrapper, 0o755);
  process.env.MINIFLARE_WORKERD_PATH = wrapper;
  process.env.MINIFLARE_WORKERD_V8_FLAGS = [process.env.MINIFLARE_WORKERD_V8_FLAGS, "--trace-gc-nvp"].filter(Boolean).join(" ");
}

export interface MiniflareEdgeOptions {
  /** workerd's DevTools inspector on 127.0.0.1 (for CPU profiles of the Worker); off when unset */
  inspectorPort?: number;
  /**
   * Durable Objects' SQLite files on a tmpfs (/dev/shm) instead of the disk. Locally every object's commit is
   * written and fsynced on the one thread that runs every object, so on a machine whose disk others share the
   * files measure the disk as much as the code; Cloudflare's storage does not block the object's thread on a
   * local disk. Same SQLite, same statements, same commits either way.
   */
  tmpfsStorage?: boolean;
  /**
   * Receives each garbage collection of the runtime's V8 isolates (V8's `--trace-gc-nvp` record: `gc` "s" for a
   * young-generation scavenge, "mc" for a full mark-compact; `pause` in ms) as it happens. Set, it runs workerd with
   * that V8 flag and its output line-buffered (through coreutils' stdbuf), so a record arrives when its GC ends.
   */
  onGc?: (record: GcRecord) => void;
}

export interface GcRecord {
  gc: string;
  pause: number;
  reason?: string;
  [field: string]: unknown;
}

export async function startMiniflareEdge(vars: Record<string, string>, opts: MiniflareEdgeOptions = {}): Promise<BenchEdge> {
  // wrangler.toml's `[assets]` folder must exist for the dry-run build; this Miniflare serves no pages (their
  // routes answer 503 `pages_unavailable`), bench:web measures them under wrangler dev.
  await buildWeb();
  const outdir = await mkdtemp(join(tmpdir(), "pulsecast-bench-build-"));
  const build = await run("npx", ["wrangler", "deploy", "--dry-run", "--outdir", outdir], {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
  });
  if (build.code !== 0) throw new Error(`wrangler deploy --dry-run failed:\n${(build.stdout + build.stderr).slice(-4000)}`);
  const port = await freePort();
  const persist = opts.tmpfsStorage ? await mkdtemp(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "pulsecast-bench-do-")) : undefined;
  const sqlite = (className: string) => ({ className, useSQLite: true });
  // Miniflare 5 has a new options format; the v4 form (as the docs describe it) converts.
  const options: V4MiniflareOptions = {
    host: "127.0.0.1",
    port,
    ...(persist !== undefined && { resourcePersistencePath: persist }),
    ...(opts.inspectorPort !== undefined && { inspectorPort: opts.inspectorPort }),
    // The bench's stdout carries only its JSON line: the Worker's logs go to stderr.
    handleStructuredLogs: (log) => {
      // V8's own trace lines start with its isolate's address (`[pid:0x...:n]  123 ms: ...`)
      if (opts.onGc && /^\[\d+:0x[0-9a-f]+/.test(log.message)) {
        const gc = /GC: (\{.*\})\s*$/.exec(log.message);
        if (gc) opts.onGc(JSON.parse(gc[1]!) as GcRecord);
        return;
      }
      process.stderr.write(`[workerd ${log.level}] ${log.message}\n`);
    },
    workers: [
      {
        name: "pulsecast-edge",
        modules: true,
        scriptPath: join(outdir, "index.js"),
        modulesRoot: outdir,
        compatibilityDate: await compatibilityDate(),
        durableObjects: {
          Room: sqlite("Room"),
          Inbox: sqlite("Inbox"),
          RoomCoordinator: sqlite("RoomCoordinator"),
          RoomRelay: sqlite("RoomRelay"),
          RoomShard: sqlite("RoomShard"),
          Stream: sqlite("Stream"),
          StreamIndex: sqlite("StreamIndex"),
          Fleet: sqlite("Fleet"),
          UploadSession: sqlite("UploadSession"),
          VideoLibrary: sqlite("VideoLibrary"),
          LowLatencyStream: sqlite("LowLatencyStream"),
          LowLatencyRelay: sqlite("LowLatencyRelay"),
        },
        // Recordings (media.ready) reach the owner's video library, which keeps its objects beside the bucket's.
        r2Buckets: ["MEDIA"],
        bindings: { ...TEST_SECRETS, ...TEST_VARS, ...vars },
      },
    ],
  };
  const { Miniflare, convertV4MiniflareOptions } = await wranglersMiniflare();
  if (opts.onGc) await traceGc(outdir);
  const mf = new Miniflare(convertV4MiniflareOptions(options));
  const url = (await mf.ready).toString().replace(/\/$/, "");
  return {
    url,
    wsUrl: url.replace(/^http/, "ws"),
    workerdPids: () => workerdPidsUnder(process.pid),
    async stop() {
      await mf.dispose();
      await rm(outdir, { recursive: true, force: true });
      if (persist !== undefined) await rm(persist, { recursive: true, force: true });
    },
  };
}
