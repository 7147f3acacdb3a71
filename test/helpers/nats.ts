import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ConnectionOptions } from "nats";
import { inboxPrefix, NATS_ROLES, natsAuthorizationBlock, type NatsRole } from "../../media-node/src/bus/nats-permissions.ts";
import { freePort } from "./ports.ts";
import { type GroupProcess, spawnGroup } from "./process.ts";

/**
 * A real nats-server with JetStream on 127.0.0.1 and a free port, its store in a temp folder, with authorization
 * ON: one user per role with the shipped permissions (media-node/src/bus/nats-permissions.ts) and a fresh random
 * password per run, so every test goes through the same secured path production does. Test code itself connects
 * as `ops` (may do anything) unless it asks for a role.
 */
export interface NatsServer {
  url: string;
  port: number;
  storeDir: string;
  process: GroupProcess;
  /** this run's password of each role */
  passwords: Record<NatsRole, string>;
  /** client options for connecting as `role` (default ops) */
  options(role?: NatsRole, extra?: Partial<ConnectionOptions>): ConnectionOptions;
  /** NATS_URL, NATS_USER, NATS_PASSWORD for a process connecting as `role` */
  env(role: NatsRole): Record<string, string>;
  /** the same as bus settings (natsUrl, natsUser, natsPassword) */
  settings(role: NatsRole): { natsUrl: string; natsUser: string; natsPassword: string };
  /** SIGKILL, then start again on the same port and store (fault injection) */
  restart(opts?: { hard?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

/** Fresh random passwords for every role (pass them to startNats to know them before the server starts). */
export function natsPasswords(): Record<NatsRole, string> {
  return Object.fromEntries(NATS_ROLES.map((r) => [r, randomBytes(18).toString("base64url")])) as Record<NatsRole, string>;
}

export async function startNats(opts: { port?: number; storeDir?: string; passwords?: Record<NatsRole, string> } = {}): Promise<NatsServer> {
  const port = opts.port ?? (await freePort());
  const storeDir = opts.storeDir ?? (await mkdtemp(join(tmpdir(), "pulsecast-nats-")));
  const ownsStore = !opts.storeDir;
  const confDir = await mkdtemp(join(tmpdir(), "pulsecast-nats-conf-"));
  const passwords = opts.passwords ?? natsPasswords();
  const confFile = join(confDir, "nats-server.conf");
  await writeFile(confFile, `listen: "127.0.0.1:${port}"\njetstream { store_dir: ${JSON.stringify(storeDir)} }\n${natsAuthorizationBlock(passwords)}\n`, { mode: 0o600 });
  const launch = async () => {
    const proc = spawnGroup("nats-server", ["-c", confFile]);
    await proc.waitForOutput(/Server is ready/, 15_000);
    return proc;
  };
  const url = `nats://127.0.0.1:${port}`;
  const server: NatsServer = {
    url,
    port,
    storeDir,
    passwords,
    process: await launch(),
    options: (role = "ops", extra = {}) => ({ servers: url, user: role, pass: passwords[role], inboxPrefix: inboxPrefix(role), ...extra }),
    env: (role) => ({ NATS_URL: url, NATS_USER: role, NATS_PASSWORD: passwords[role] }),
    settings: (role) => ({ natsUrl: url, natsUser: role, natsPassword: passwords[role] }),
    async restart({ hard = true } = {}) {
      if (hard) await server.process.kill();
      else await server.process.stop();
      server.process = await launch();
    },
    async stop() {
      await server.process.stop();
      await rm(confDir, { recursive: true, force: true });
      if (ownsStore) await rm(storeDir, { recursive: true, force: true });
    },
  };
  return server;
}
