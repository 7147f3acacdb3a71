import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./edge.ts";
import { freePort } from "./ports.ts";
import { type GroupProcess, spawnGroup } from "./process.ts";

/** s3rver's built-in account (fixed by s3rver itself; not a secret). */
export const S3RVER_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } as const;

/**
 * A real S3-protocol server (s3rver) on 127.0.0.1 and a free port, its data in a temp folder, one bucket made
 * at start. Run as a child process in its own group so a test can take storage away (stop) and bring it back
 * (start) on the same port and data, like an outage.
 */
export interface S3Server {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  port: number;
  bucket: string;
  dir: string;
  credentials: typeof S3RVER_CREDENTIALS;
  /** the env a media node needs to use this server (STORAGE_DRIVER=s3, S3_* ...) */
  env: Record<string, string>;
  process: GroupProcess | undefined;
  /** take storage away: the process ends, port and data stay for start() */
  halt(): Promise<void>;
  /** bring it back on the same port and data */
  start(): Promise<void>;
  /** halt and remove the data folder (if this helper made it) */
  stop(): Promise<void>;
}

export async function startS3(opts: { port?: number; dir?: string; bucket?: string } = {}): Promise<S3Server> {
  const port = opts.port ?? (await freePort());
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "pulsecast-s3-")));
  const bucket = opts.bucket ?? "pulsecast-test";
  const endpoint = `http://127.0.0.1:${port}`;
  const launch = async () => {
    // process.execPath is the Node running the tests (22 from node_modules). s3rver's paginated listing uses
    // a hash that OpenSSL 3 only offers with the legacy provider.
    const proc = spawnGroup(process.execPath, [join(ROOT, "node_modules/s3rver/bin/s3rver.js"), "-d", dir, "-a", "127.0.0.1", "-p", String(port), "--silent", "--configure-bucket", bucket], {
      env: { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --openssl-legacy-provider`.trim() },
    });
    await proc.waitForOutput(/S3rver listening on/, 30_000);
    return proc;
  };
  const server: S3Server = {
    endpoint,
    port,
    bucket,
    dir,
    credentials: S3RVER_CREDENTIALS,
    env: {
      STORAGE_DRIVER: "s3",
      S3_ENDPOINT: endpoint,
      S3_REGION: "us-east-1",
      S3_BUCKET: bucket,
      S3_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      S3_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      S3_FORCE_PATH_STYLE: "true",
    },
    process: await launch(),
    async halt() {
      await server.process?.stop();
      server.process = undefined;
    },
    async start() {
      if (server.process) return;
      server.process = await launch();
    },
    async stop() {
      await server.halt();
      if (!opts.dir) await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}
