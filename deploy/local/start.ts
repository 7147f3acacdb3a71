// `npm start`: brings Pulsecast up locally on 127.0.0.1 — nats-server (JetStream), the edge under wrangler dev,
// the media node, and both bridges — with secrets from .dev.vars (written with random values on first run).
// Creates a demo stream through the Streams API and prints its OBS settings, a ready-to-paste FFmpeg publish
// command, its playback URL through the edge's /play (the media node's /media is for debugging only) and a
// test JWT. Ctrl-C stops everything: each part
// runs in its own process group, so wrangler's workerd and FFmpeg children go with their parents.
//
// Ports (override with the env vars named): EDGE_PORT 8787, NATS_PORT 4222, MEDIA_RTMP_PORT 1935,
// MEDIA_HTTP_PORT 8000, HTTP_TO_NATS_PORT 8788, METRICS_PORT 8789 (NATS->HTTP bridge metrics).
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { resolve } from "node:path";
import { SignJWT } from "jose";
import { DEV_VARS_PATH, readDevVars } from "../../media-node/src/settings-env.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const VAR = resolve(ROOT, "var");
/** Secrets every part needs; generated once per checkout into .dev.vars (git-ignored), never committed. */
const SECRET_NAMES = ["JWT_SECRET", "PUBLISH_TOKEN_SECRET", "EDGE_INGRESS_SECRET", "BRIDGE_INGRESS_SECRET", "INTERNAL_API_TOKEN"];

/** Reads .dev.vars (wrangler dev reads the same file), adding a random value for each missing secret. */
function loadDevVars(): Record<string, string> {
  const vars = readDevVars(DEV_VARS_PATH);
  const missing = [...SECRET_NAMES, "PLAYBACK_SIGNING_KEYS"].filter((name) => !vars[name]);
  for (const name of missing) vars[name] = randomBytes(24).toString("base64url");
  // Viewer-token keys are `kid:secret` pairs (the first signs; add a new first one to rotate).
  if (missing.includes("PLAYBACK_SIGNING_KEYS")) vars.PLAYBACK_SIGNING_KEYS = `k1:${randomBytes(32).toString("base64url")}`;
  if (missing.length > 0) {
    writeFileSync(DEV_VARS_PATH, Object.entries(vars).map(([k, v]) => `${k}="${v}"`).join("\n") + "\n", { mode: 0o600 });
    console.log(`[start] wrote ${missing.join(", ")} to .dev.vars (git-ignored)`);
  }
  return vars;
}

const port = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const ports = {
  edge: port("EDGE_PORT", 8787),
  nats: port("NATS_PORT", 4222),
  rtmp: port("MEDIA_RTMP_PORT", 1935),
  mediaHttp: port("MEDIA_HTTP_PORT", 8000),
  httpToNats: port("HTTP_TO_NATS_PORT", 8788),
  bridgeMetrics: port("METRICS_PORT", 8789),
};

const children: { name: string; child: ChildProcess }[] = [];
let stopping = false;

function start(name: string, command: string, args: string[], env: Record<string, string> = {}): void {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const prefix = `[${name}] `;
  const pipe = (stream: NodeJS.ReadableStream | null, out: NodeJS.WriteStream) =>
    stream?.on("data", (chunk: Buffer) => out.write(chunk.toString().replace(/^(?=.)/gm, prefix)));
  pipe(child.stdout, process.stdout);
  pipe(child.stderr, process.stderr);
  child.on("exit", (code, signal) => {
    if (stopping) return;
    console.error(`[start] ${name} exited (${signal ?? `code ${code}`}); stopping everything`);
    void stopAll(1);
  });
  // A binary that cannot be started (not installed, not executable) must stop the rest, not crash this script
  // and leave the parts already started running on their own.
  child.on("error", (error) => {
    if (stopping) return;
    console.error(`[start] could not run ${name} (${command}): ${error.message}; stopping everything`);
    void stopAll(1);
  });
  children.push({ name, child });
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}

async function stopAll(code = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  // Reverse start order, one part at a time: the bridges and the media node first (they flush to NATS and the
  // edge), then the edge, then NATS last. Each part gets up to 15 s before its process group is killed.
  for (const { child } of [...children].reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((r) => child.once("exit", r));
    signalGroup(child, "SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    signalGroup(child, "SIGKILL");
  }
  process.exit(code);
}
process.on("SIGINT", () => void stopAll(0));
process.on("SIGTERM", () => void stopAll(0));

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (stopping) throw new Error(`stopped while waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
const httpOk = (url: string) => async () => (await fetch(url)).ok;
const tcpOpen = (p: number) => () =>
  new Promise<boolean>((res) => {
    const socket = connect(p, "127.0.0.1", () => (socket.destroy(), res(true)));
    socket.on("error", () => res(false));
  });

const vars = loadDevVars();
mkdirSync(resolve(VAR, "nats"), { recursive: true });
const natsUrl = `nats://127.0.0.1:${ports.nats}`;
const edgeUrl = `http://127.0.0.1:${ports.edge}`;
const mediaUrl = `http://127.0.0.1:${ports.mediaHttp}`;
const shared = { NATS_URL: natsUrl };

start("nats", "nats-server", ["-js", "-a", "127.0.0.1", "-p", String(ports.nats), "-sd", resolve(VAR, "nats")]);
start("edge", "wrangler", ["dev", "--ip", "127.0.0.1", "--port", String(ports.edge), "--persist-to", resolve(VAR, "edge"), "--show-interactive-dev-session=false",
  "--var", `BRIDGE_URL:http://127.0.0.1:${ports.httpToNats}/events`, "--var", `PLAYBACK_BASE_URL:${edgeUrl}`, "--var", `PLAYBACK_ORIGIN_URL:${mediaUrl}/media`, "--var", `RTMP_BASE_URL:rtmp://127.0.0.1:${ports.rtmp}/live`], {
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_SEND_METRICS: "false",
});
await waitFor("nats-server", tcpOpen(ports.nats));
start("media-node", "node", ["media-node/src/main.ts"], {
  ...shared,
  PUBLISH_TOKEN_SECRET: vars.PUBLISH_TOKEN_SECRET!,
  MEDIA_RTMP_PORT: String(ports.rtmp),
  MEDIA_HTTP_PORT: String(ports.mediaHttp),
  UPLOAD_JOURNAL_DIR: process.env.UPLOAD_JOURNAL_DIR ?? resolve(VAR, "media/upload-journal"),
  // Stream keys of the Streams API are checked with the edge (revocations reach the node within seconds).
  STREAM_KEYS_EDGE_URL: edgeUrl,
  INTERNAL_API_TOKEN: vars.INTERNAL_API_TOKEN!,
});
start("nats-to-http", "node", ["media-node/src/bridges/nats-to-http/main.ts"], {
  ...shared,
  EDGE_EVENTS_URL: `${edgeUrl}/hooks/events`,
  EDGE_INGRESS_SECRET: vars.EDGE_INGRESS_SECRET!,
  METRICS_PORT: String(ports.bridgeMetrics),
});
start("http-to-nats", "node", ["media-node/src/bridges/http-to-nats/main.ts"], {
  ...shared,
  BRIDGE_INGRESS_SECRET: vars.BRIDGE_INGRESS_SECRET!,
  HTTP_TO_NATS_PORT: String(ports.httpToNats),
});

try {
  await Promise.all([
    waitFor("the edge", httpOk(`${edgeUrl}/healthz`)),
    waitFor("the media node", httpOk(`${mediaUrl}/healthz`)),
    waitFor("the NATS->HTTP bridge", httpOk(`http://127.0.0.1:${ports.bridgeMetrics}/healthz`)),
    waitFor("the HTTP->NATS bridge", httpOk(`http://127.0.0.1:${ports.httpToNats}/healthz`)),
  ]);
} catch (error) {
  console.error(`[start] ${(error as Error).message}`);
  await stopAll(1);
}

// A JWT to try things with, valid for a day, and a demo stream made with it through the Streams API.
const exp = Math.floor(Date.now() / 1000) + 24 * 3600;
const jwt = await new SignJWT({ role: "broadcaster", name: "Demo Broadcaster" })
  .setProtectedHeader({ alg: "HS256" })
  .setSubject("demo-user")
  .setExpirationTime(exp)
  .sign(new TextEncoder().encode(vars.JWT_SECRET!));
const created = await fetch(`${edgeUrl}/streams`, { method: "POST", headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json" }, body: JSON.stringify({ title: "Demo" }) });
if (created.status !== 201) {
  console.error(`[start] POST /streams answered ${created.status}: ${await created.text()}`);
  await stopAll(1);
}
const stream = (await created.json()) as { id: string; roomId: string; rtmp: { url: string; streamKey: string }; playback: { url?: string } };

console.log(`
[start] Pulsecast is up.

  Demo stream ${stream.id} (made with POST /streams; manage it with the JWT below, see README "Streams API"):
  Publish a test stream (FFmpeg):
    ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440 \\
      -c:v libx264 -preset veryfast -g 60 -c:a aac -f flv '${stream.rtmp.url}/${stream.rtmp.streamKey}'
  OBS: Settings > Stream > Custom; Server ${stream.rtmp.url} ; Stream Key ${stream.rtmp.streamKey}

  Watch (HLS through the edge): ${stream.playback.url}
  Chat + presence:  ws://127.0.0.1:${ports.edge}/parties/room/${stream.roomId}?token=${jwt}
  Test JWT (HS256, sub demo-user, role broadcaster, 24 h):
    ${jwt}

  edge ${edgeUrl}   media node ${mediaUrl} (/healthz, /metrics; /media is for debugging, not for viewers)   nats ${natsUrl}
  HTTP->NATS bridge http://127.0.0.1:${ports.httpToNats}/events   NATS->HTTP bridge metrics http://127.0.0.1:${ports.bridgeMetrics}/metrics
  secrets: .dev.vars    state: var/
Ctrl-C stops everything.
`);
