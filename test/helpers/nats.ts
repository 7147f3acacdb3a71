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

/**
 * A password the shipped configs can take from the environment: nats-server parses a variable's value as a config
 * value, so one starting with digits (`4z…`) is refused as a malformed number. A letter first, then hex.
 */
export function natsPassword(): string {
  return `p${randomBytes(18).toString("hex")}`;
}

/** Fresh random passwords for every role (pass them to startNats to know them before the server starts). */
export function natsPasswords(): Record<NatsRole, string> {
  return Object.fromEntries(NATS_ROLES.map((r) => [r, natsPassword()])) as Record<NatsRole, string>;
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

/** One server of a test cluster. */
export interface ClusterServer {
  name: string;
  port: number;
  clusterPort: number;
  url: string;
  storeDir: string;
  process: GroupProcess;
  /** SIGKILL (fault injection); the server stays down until restart() */
  kill(): Promise<void>;
  /** starts it again on the same ports and store (after kill(), or SIGKILL then start) */
  restart(): Promise<void>;
  readonly running: boolean;
}

/** A 3-server JetStream cluster run from the shipped deploy/nats/nats-cluster.conf; same surface as NatsServer. */
export interface NatsCluster {
  /** every server's client URL, comma-separated (what NATS_URL takes) */
  url: string;
  servers: ClusterServer[];
  passwords: Record<NatsRole, string>;
  options(role?: NatsRole, extra?: Partial<ConnectionOptions>): ConnectionOptions;
  /** NATS_URL (all servers), NATS_USER, NATS_PASSWORD, NATS_REPLICAS=3 for a process connecting as `role` */
  env(role: NatsRole): Record<string, string>;
  settings(role: NatsRole): { natsUrl: string; natsUser: string; natsPassword: string; replicas: number };
  /** the server whose name is `name` (JetStream reports leaders by name) */
  byName(name: string): ClusterServer;
  /** resolves once JetStream answers and its meta leader sees every other server as a current peer */
  ready(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Three nats-server processes on 127.0.0.1 and free ports, clustered with JetStream, authorization on (the
 * shipped roles and permissions, fresh passwords), each with its own store in a temp folder. The servers run the
 * shipped deploy/nats/nats-cluster.conf itself: only its environment (names, addresses, store, passwords) and the
 * routes include are the test's, as they are each host's own in production.
 */
export async function startNatsCluster(opts: { size?: number; passwords?: Record<NatsRole, string> } = {}): Promise<NatsCluster> {
  const size = opts.size ?? 3;
  const { readFile } = await import("node:fs/promises");
  const { ROOT } = await import("./edge.ts");
  const { connect } = await import("nats");
  const dir = await mkdtemp(join(tmpdir(), "pulsecast-nats-cluster-"));
  const passwords = opts.passwords ?? natsPasswords();
  const routePassword = natsPassword();
  const ports = await Promise.all(Array.from({ length: size }, async () => ({ port: await freePort(), clusterPort: await freePort(), monitorPort: await freePort() })));
  const conf = await readFile(join(ROOT, "deploy/nats/nats-cluster.conf"), "utf8");
  await writeFile(join(dir, "nats-cluster.conf"), conf, { mode: 0o600 });
  await writeFile(join(dir, "routes.conf"), `routes: [\n${ports.map((p) => `  "nats-route://route:${routePassword}@127.0.0.1:${p.clusterPort}"`).join("\n")}\n]\n`, { mode: 0o600 });
  const roleEnv = Object.fromEntries(NATS_ROLES.map((r) => [`NATS_PASSWORD_${r.toUpperCase().replace(/-/g, "_")}`, passwords[r]]));
  const servers: ClusterServer[] = ports.map(({ port, clusterPort, monitorPort }, i) => {
    const name = `nats-${i + 1}`;
    const storeDir = join(dir, name);
    let running = false;
    const launch = async () => {
      const proc = spawnGroup("nats-server", ["-c", join(dir, "nats-cluster.conf")], {
        env: { ...process.env, ...roleEnv, NATS_SERVER_NAME: name, NATS_LISTEN: `127.0.0.1:${port}`, NATS_CLUSTER_LISTEN: `127.0.0.1:${clusterPort}`, NATS_MONITOR_LISTEN: `127.0.0.1:${monitorPort}`, NATS_STORE_DIR: storeDir, NATS_ROUTE_PASSWORD: routePassword },
      });
      await proc.waitForOutput(/Server is ready/, 15_000);
      running = true;
      return proc;
    };
    const server: ClusterServer = {
      name,
      port,
      clusterPort,
      url: `nats://127.0.0.1:${port}`,
      storeDir,
      process: undefined as unknown as GroupProcess,
      async kill() {
        running = false;
        await server.process.kill();
      },
      async restart() {
        if (running) await server.kill();
        server.process = await launch();
      },
      get running() {
        return running;
      },
    };
    return Object.assign(server, { launch });
  });
  await Promise.all(servers.map(async (s) => (s.process = await (s as ClusterServer & { launch: () => Promise<GroupProcess> }).launch())));
  const url = servers.map((s) => s.url).join(",");
  const cluster: NatsCluster = {
    url,
    servers,
    passwords,
    options: (role = "ops", extra = {}) => ({ servers: servers.map((s) => s.url), user: role, pass: passwords[role], inboxPrefix: inboxPrefix(role), ...extra }),
    env: (role) => ({ NATS_URL: url, NATS_USER: role, NATS_PASSWORD: passwords[role], NATS_REPLICAS: String(Math.min(3, size)) }),
    settings: (role) => ({ natsUrl: url, natsUser: role, natsPassword: passwords[role], replicas: Math.min(3, size) }),
    byName: (name) => {
      const s = servers.find((x) => x.name === name);
      if (!s) throw new Error(`no server named ${name}`);
      return s;
    },
    async ready() {
      const deadline = Date.now() + 30_000;
      const allPeersCurrent = async () => {
        for (const { monitorPort } of ports) {
          const jsz = await fetch(`http://127.0.0.1:${monitorPort}/jsz`).then((r) => r.json() as Promise<{ meta_cluster?: { leader?: string; replicas?: { current?: boolean }[] } }>).catch(() => undefined);
          const meta = jsz?.meta_cluster;
          if (meta?.leader && (meta.replicas ?? []).length === size - 1 && meta.replicas!.every((r) => r.current)) return true;
        }
        return false;
      };
      const nc = await connect(cluster.options("ops"));
      try {
        for (;;) {
          try {
            const jsm = await nc.jetstreamManager({ timeout: 2000 });
            await jsm.getAccountInfo();
            // A meta leader answers before every peer has joined; a stream with replicas 3 needs all of them
            // ("no suitable peers for placement"), so wait until the leader sees every other server current.
            if (await allPeersCurrent()) return;
            throw new Error("not every JetStream peer is current yet");
          } catch (error) {
            if (Date.now() > deadline) throw new Error(`JetStream cluster not ready: ${(error as Error).message}`);
            await new Promise((r) => setTimeout(r, 250));
          }
        }
      } finally {
        await nc.close();
      }
    },
    async stop() {
      await Promise.all(servers.map((s) => s.process?.stop()));
      await rm(dir, { recursive: true, force: true });
    },
  };
  await cluster.ready();
  return cluster;
}
