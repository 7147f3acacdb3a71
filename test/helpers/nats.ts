import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { type GroupProcess, spawnGroup } from "./process.ts";

/** A real nats-server with JetStream on 127.0.0.1 and a free port, its store in a temp folder. */
export interface NatsServer {
  url: string;
  port: number;
  storeDir: string;
  process: GroupProcess;
  /** SIGKILL, then start again on the same port and store (fault injection) */
  restart(opts?: { hard?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

export async function startNats(opts: { port?: number; storeDir?: string } = {}): Promise<NatsServer> {
  const port = opts.port ?? (await freePort());
  const storeDir = opts.storeDir ?? (await mkdtemp(join(tmpdir(), "pulsecast-nats-")));
  const ownsStore = !opts.storeDir;
  const launch = async () => {
    const proc = spawnGroup("nats-server", ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDir]);
    await proc.waitForOutput(/Server is ready/, 15_000);
    return proc;
  };
  const server: NatsServer = {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    process: await launch(),
    async restart({ hard = true } = {}) {
      if (hard) await server.process.kill();
      else await server.process.stop();
      server.process = await launch();
    },
    async stop() {
      await server.process.stop();
      if (ownsStore) await rm(storeDir, { recursive: true, force: true });
    },
  };
  return server;
}
