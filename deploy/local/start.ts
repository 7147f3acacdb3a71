// Brings Pulsecast up locally: nats-server (JetStream), the edge under wrangler dev, the media node and both
// bridges, all on 127.0.0.1, with secrets from .dev.vars (written with random values on first run).
// Ctrl-C stops everything (each part runs in its own process group).
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");
const DEV_VARS = resolve(ROOT, ".dev.vars");
const SECRET_NAMES = ["JWT_SECRET", "PUBLISH_TOKEN_SECRET", "EDGE_INGRESS_SECRET", "BRIDGE_INGRESS_SECRET", "INTERNAL_API_TOKEN"];

/** Reads .dev.vars (KEY=value lines), adding a random value for every secret that is missing. */
function loadDevVars(): Record<string, string> {
  const vars: Record<string, string> = {};
  if (existsSync(DEV_VARS)) {
    for (const line of readFileSync(DEV_VARS, "utf8").split("\n")) {
      const m = line.match(/^\s*([A-Z0-9_]+)\s*=\s*"?(.*?)"?\s*$/);
      if (m) vars[m[1]!] = m[2]!;
    }
  }
  let added = false;
  for (const name of SECRET_NAMES) {
    if (!vars[name]) {
      vars[name] = randomBytes(24).toString("base64url");
      added = true;
    }
  }
  if (added) {
    writeFileSync(DEV_VARS, Object.entries(vars).map(([k, v]) => `${k}="${v}"`).join("\n") + "\n", { mode: 0o600 });
    console.log(`[start] wrote local secrets to .dev.vars (git-ignored)`);
  }
  return vars;
}

const children: { name: string; child: ChildProcess }[] = [];

function start(name: string, command: string, args: string[], env: Record<string, string> = {}) {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const prefix = `[${name}] `;
  const pipe = (stream: NodeJS.ReadableStream | null, out: NodeJS.WriteStream) =>
    stream?.on("data", (chunk: Buffer) => out.write(chunk.toString().replace(/^(?=.)/gm, prefix)));
  pipe(child.stdout, process.stdout);
  pipe(child.stderr, process.stderr);
  child.on("exit", (code, signal) => {
    if (!stopping) {
      console.error(`[start] ${name} exited (${signal ?? code}); stopping everything`);
      void stopAll(1);
    }
  });
  children.push({ name, child });
  return child;
}

let stopping = false;
async function stopAll(code = 0) {
  if (stopping) return;
  stopping = true;
  for (const { child } of children.reverse()) {
    if (child.pid && child.exitCode === null) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        /* gone */
      }
    }
  }
  await new Promise((r) => setTimeout(r, 1500));
  for (const { child } of children) {
    if (child.pid && child.exitCode === null) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
  }
  process.exit(code);
}
process.on("SIGINT", () => void stopAll(0));
process.on("SIGTERM", () => void stopAll(0));

async function waitHttp(url: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`${url} did not come up`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const ports = {
  edge: Number(process.env.EDGE_PORT ?? 8787),
  nats: Number(process.env.NATS_PORT ?? 4222),
};

const vars = loadDevVars();
mkdirSync(resolve(ROOT, "var/nats"), { recursive: true });
start("nats", "nats-server", ["-js", "-a", "127.0.0.1", "-p", String(ports.nats), "-sd", resolve(ROOT, "var/nats")]);
start("edge", "wrangler", ["dev", "--ip", "127.0.0.1", "--port", String(ports.edge), "--persist-to", resolve(ROOT, "var/edge"), "--show-interactive-dev-session=false"], {
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_SEND_METRICS: "false",
});
await waitHttp(`http://127.0.0.1:${ports.edge}/healthz`);
console.log(`
[start] Pulsecast is up
  edge       http://127.0.0.1:${ports.edge}   (WebSocket: ws://127.0.0.1:${ports.edge}/parties/room/<roomId>?token=<JWT>)
  nats       nats://127.0.0.1:${ports.nats}
  secrets    .dev.vars
Ctrl-C stops everything.`);
void vars;
