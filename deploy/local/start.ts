// `npm start`: brings Pulsecast up locally on 127.0.0.1 — nats-server (JetStream, authorization on), the edge
// under wrangler dev, the media node, and both bridges — with secrets from .dev.vars (written with random values
// on first run) and fresh NATS passwords for every run. The Node parts run with PULSECAST_DEV=1: they read
// .dev.vars and refuse to listen beyond loopback.
// Creates a demo stream through the Streams API and prints its OBS settings, a ready-to-paste FFmpeg publish
// command, its playback URL through the edge's /play (the media node's /media is for debugging only) and a
// test JWT. A part that crashes is restarted with backoff while the others keep running
// (deploy/local/supervisor.ts); Ctrl-C stops everything, and so does a part that cannot start at all. Each part
// runs in its own process group, so wrangler's workerd and FFmpeg children go with their parents.
//
// The email notifier runs too, sending to a local catch-all SMTP server (deploy/local/smtp-catch-all.ts) that logs
// each message and keeps it under var/mail; the edge gets a VAPID key pair (in .dev.vars) for Web Push.
//
// Ports (override with the env vars named): EDGE_PORT 8787, NATS_PORT 4222, MEDIA_RTMP_PORT 1935,
// MEDIA_HTTP_PORT 8000, MEDIA_OPS_PORT 8001 (media node health and metrics), HTTP_TO_NATS_PORT 8788,
// METRICS_PORT 8789 (NATS->HTTP bridge metrics), SMTP_PORT 2525 (local catch-all).
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { resolve } from "node:path";
import { SignJWT } from "jose";
import { NATS_ROLES, natsAuthorizationBlock, type NatsRole } from "../../media-node/src/bus/nats-permissions.ts";
import { DEV_VARS_PATH, readDevVars } from "../../media-node/src/settings-env.ts";
import { generateVapidKeys } from "../../shared/vapid-keys.ts";
import { Supervisor } from "./supervisor.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const VAR = resolve(ROOT, "var");
/** Secrets every part needs; generated once per checkout into .dev.vars (git-ignored), never committed. */
const SECRET_NAMES = ["JWT_SECRET", "PUBLISH_TOKEN_SECRET", "EDGE_INGRESS_SECRET", "BRIDGE_INGRESS_SECRET", "INTERNAL_API_TOKEN", "UNSUBSCRIBE_SECRET"];

/** Reads .dev.vars (wrangler dev reads the same file), adding a random value for each missing secret. */
async function loadDevVars(): Promise<Record<string, string>> {
  const vars = readDevVars(DEV_VARS_PATH);
  const missing = [...SECRET_NAMES, "PLAYBACK_SIGNING_KEYS"].filter((name) => !vars[name]);
  for (const name of missing) vars[name] = randomBytes(32).toString("base64url");
  // Viewer-token keys are `kid:secret` pairs (the first signs; add a new first one to rotate).
  if (missing.includes("PLAYBACK_SIGNING_KEYS")) vars.PLAYBACK_SIGNING_KEYS = `k1:${randomBytes(32).toString("base64url")}`;
  // The VAPID pair is made together (a new pair orphans every browser subscription, so it is kept once made).
  if (!vars.VAPID_PRIVATE_KEY || !vars.VAPID_PUBLIC_KEY) {
    const vapid = await generateVapidKeys();
    vars.VAPID_PUBLIC_KEY = vapid.publicKey;
    vars.VAPID_PRIVATE_KEY = vapid.privateKey;
    missing.push("VAPID_PUBLIC_KEY", "VAPID_PRIVATE_KEY");
  }
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
  mediaOps: port("MEDIA_OPS_PORT", 8001),
  httpToNats: port("HTTP_TO_NATS_PORT", 8788),
  bridgeMetrics: port("METRICS_PORT", 8789),
  smtp: port("SMTP_PORT", 2525),
};

const supervisor = new Supervisor({ cwd: ROOT });
// Only Ctrl-C (or SIGTERM) and a part that cannot start at all stop everything.
supervisor.on("stopped", ({ code }) => process.exit(code));

function start(name: string, command: string, args: string[], env: Record<string, string> = {}): void {
  supervisor.add({ name, command, args, env });
}

async function stopAll(code = 0): Promise<void> {
  await supervisor.stop(code);
}
process.on("SIGINT", () => void stopAll(0));
process.on("SIGTERM", () => void stopAll(0));

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (supervisor.stopping) throw new Error(`stopped while waiting for ${what}`);
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

/**
 * The nats-server config of this run: JetStream under var/nats, and the same authorization block production
 * ships (deploy/nats/nats-server.conf), with a fresh random password per role. Only this run knows them.
 */
function writeNatsConfig(): { file: string; passwords: Record<NatsRole, string> } {
  const passwords = Object.fromEntries(NATS_ROLES.map((role) => [role, randomBytes(18).toString("base64url")])) as Record<NatsRole, string>;
  const file = resolve(VAR, "nats/nats-server.conf");
  const conf = `listen: "127.0.0.1:${ports.nats}"\njetstream { store_dir: ${JSON.stringify(resolve(VAR, "nats"))} }\n${natsAuthorizationBlock(passwords)}\n`;
  writeFileSync(file, conf, { mode: 0o600 });
  return { file, passwords };
}

const vars = await loadDevVars();
mkdirSync(resolve(VAR, "nats"), { recursive: true });
const natsUrl = `nats://127.0.0.1:${ports.nats}`;
const edgeUrl = `http://127.0.0.1:${ports.edge}`;
const mediaUrl = `http://127.0.0.1:${ports.mediaHttp}`;
const mediaOpsUrl = `http://127.0.0.1:${ports.mediaOps}`;
const nats = writeNatsConfig();
/** What every Node part gets: the development flag (secrets from .dev.vars, loopback only) and its NATS user. */
const partEnv = (role: NatsRole) => ({ PULSECAST_DEV: "1", NATS_URL: natsUrl, NATS_USER: role, NATS_PASSWORD: nats.passwords[role] });

start("nats", "nats-server", ["-c", nats.file]);
start("edge", "wrangler", ["dev", "--ip", "127.0.0.1", "--port", String(ports.edge), "--persist-to", resolve(VAR, "edge"), "--show-interactive-dev-session=false",
  "--var", `BRIDGE_URL:http://127.0.0.1:${ports.httpToNats}/events`, "--var", `PLAYBACK_BASE_URL:${edgeUrl}`, "--var", `PLAYBACK_ORIGIN_URL:${mediaUrl}/media`, "--var", `RTMP_BASE_URL:rtmp://127.0.0.1:${ports.rtmp}/live`,
  "--var", "ALLOW_HTTP_URLS:true", "--var", "DEV_SIGN_IN:true", "--var", `EDGE_PUBLIC_URL:${edgeUrl}`], {
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_SEND_METRICS: "false",
});
await waitFor("nats-server", tcpOpen(ports.nats));
start("media-node", "node", ["media-node/src/main.ts"], {
  ...partEnv("media-node"),
  MEDIA_RTMP_PORT: String(ports.rtmp),
  MEDIA_HTTP_PORT: String(ports.mediaHttp),
  MEDIA_OPS_PORT: String(ports.mediaOps),
  UPLOAD_JOURNAL_DIR: process.env.UPLOAD_JOURNAL_DIR ?? resolve(VAR, "media/upload-journal"),
  // Stream keys of the Streams API are checked with the edge (revocations reach the node within seconds); the
  // node's INTERNAL_API_TOKEN comes from .dev.vars like its other secrets.
  STREAM_KEYS_EDGE_URL: edgeUrl,
  // Low-latency streams announce their parts to the edge (signed with EDGE_INGRESS_SECRET, from .dev.vars).
  LLHLS_EDGE_URL: edgeUrl,
  // Uploads sit in the Worker's simulated bucket, which only the edge can read: the VOD worker fetches sources there.
  VOD_SOURCE_URL: `${edgeUrl}/internal/media`,
  VOD_SOURCE_TOKEN: vars.INTERNAL_API_TOKEN!,
});
start("nats-to-http", "node", ["media-node/src/bridges/nats-to-http/main.ts"], {
  ...partEnv("nats-to-http"),
  EDGE_EVENTS_URL: `${edgeUrl}/hooks/events`,
  METRICS_PORT: String(ports.bridgeMetrics),
});
start("http-to-nats", "node", ["media-node/src/bridges/http-to-nats/main.ts"], {
  ...partEnv("http-to-nats"),
  HTTP_TO_NATS_PORT: String(ports.httpToNats),
});
start("smtp", "node", ["deploy/local/smtp-catch-all.ts"], { SMTP_PORT: String(ports.smtp) });
start("notifier", "node", ["media-node/src/notify/main.ts"], {
  ...partEnv("notifier"),
  SMTP_HOST: "127.0.0.1",
  SMTP_PORT: String(ports.smtp),
  // The local catch-all speaks plain SMTP on loopback.
  SMTP_REQUIRE_TLS: "false",
});

try {
  await Promise.all([
    waitFor("the edge", httpOk(`${edgeUrl}/healthz`)),
    waitFor("the media node", httpOk(`${mediaOpsUrl}/healthz`)),
    waitFor("the NATS->HTTP bridge", httpOk(`http://127.0.0.1:${ports.bridgeMetrics}/healthz`)),
    waitFor("the HTTP->NATS bridge", httpOk(`http://127.0.0.1:${ports.httpToNats}/healthz`)),
    waitFor("the SMTP catch-all", tcpOpen(ports.smtp)),
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

  Watch page:       ${edgeUrl}/watch/${stream.id}#token=${jwt}
                    (or open ${edgeUrl}/watch/${stream.id} and use the dev sign-in; DEV_SIGN_IN is on for local runs)
  Go live / upload: ${edgeUrl}/studio   ${edgeUrl}/upload
  Video call:       ${edgeUrl}/call/demo   (open it in two or three windows; dev sign-in with a name each)
  Watch (HLS through the edge): ${stream.playback.url}
  Chat + presence:  ws://127.0.0.1:${ports.edge}/parties/room/${stream.roomId}?token=${jwt}
  Test JWT (HS256, sub demo-user, role broadcaster, 24 h):
    ${jwt}

  edge ${edgeUrl}   media node ${mediaUrl} (/media/: for debugging, not for viewers), ${mediaOpsUrl} (/healthz, /metrics)   nats ${natsUrl}
  HTTP->NATS bridge http://127.0.0.1:${ports.httpToNats}/events   NATS->HTTP bridge metrics http://127.0.0.1:${ports.bridgeMetrics}/metrics
  secrets: .dev.vars    NATS users and this run's passwords: var/nats/nats-server.conf    state: var/
A part that crashes is restarted (with backoff) and the others keep running; Ctrl-C stops everything.
`);
