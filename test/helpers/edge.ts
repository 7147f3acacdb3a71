import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "./ports.ts";
import { type GroupProcess, spawnGroup } from "./process.ts";

export const ROOT = resolve(import.meta.dirname, "../..");

/** Secrets for tests: fixed, obviously fake, never used outside tests. */
export const TEST_SECRETS = {
  JWT_SECRET: "test-jwt-secret-0123456789abcdef0123456789",
  PUBLISH_TOKEN_SECRET: "test-publish-secret-0123456789abcdef",
  EDGE_INGRESS_SECRET: "test-edge-ingress-secret-0123456789",
  BRIDGE_INGRESS_SECRET: "test-bridge-ingress-secret-0123456789",
  INTERNAL_API_TOKEN: "test-internal-token-0123456789abcdef",
} as const;

/** Vars every test edge gets: local media links are http:. */
export const TEST_VARS = { ALLOW_HTTP_URLS: "true" } as const;

/** The edge under `wrangler dev` (workerd) on 127.0.0.1 and a free port, with its own state folder. */
export interface EdgeServer {
  url: string;
  wsUrl: string;
  port: number;
  process: GroupProcess;
  stop(): Promise<void>;
  /** stop and start again on the same port and state (events sent meanwhile must not be lost) */
  restart(): Promise<void>;
}

export async function startEdge(vars: Record<string, string> = {}, opts: { port?: number; persistDir?: string } = {}): Promise<EdgeServer> {
  const port = opts.port ?? (await freePort());
  const persistDir = opts.persistDir ?? (await mkdtemp(join(tmpdir(), "pulsecast-edge-")));
  const allVars = { ...TEST_SECRETS, ...TEST_VARS, ...vars };
  const args = ["wrangler", "dev", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", persistDir, "--inspector-port", "0", "--show-interactive-dev-session=false", "--log-level", "warn"];
  for (const [k, v] of Object.entries(allVars)) args.push("--var", `${k}:${v}`);
  const launch = async () => {
    const proc = spawnGroup("npx", args, {
      cwd: ROOT,
      env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", CI: "true" },
    });
    // Ready when /healthz answers.
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (res.ok) break;
      } catch {
        /* not up yet */
      }
      if (proc.child.exitCode !== null) throw new Error(`wrangler dev exited:\n${proc.output().slice(-4000)}`);
      if (Date.now() > deadline) throw new Error(`wrangler dev not ready on ${port}:\n${proc.output().slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return proc;
  };
  const server: EdgeServer = {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    port,
    process: await launch(),
    async stop() {
      await server.process.stop();
      if (!opts.persistDir) await rm(persistDir, { recursive: true, force: true });
    },
    async restart() {
      await server.process.stop();
      server.process = await launch();
    },
  };
  return server;
}
