// HTTP -> NATS bridge process: `node media-node/src/bridges/http-to-nats/main.ts`.
// Takes signed events from the edge (POST /events) into JetStream. Settings: see ./config.ts.

import { connectNats } from "../../bus/connect.ts";
import { inboxPrefix } from "../../bus/nats-permissions.ts";
import { publishEvent } from "../../bus/publish.ts";
import { ensureEventStreams } from "../../bus/streams.ts";
import { ConfigError, readHttpToNatsConfig } from "./config.ts";
import { natsServersForLog } from "../../settings/nats.ts";
import { createHttpToNatsServer } from "./server.ts";

const log = (m: string) => console.log(`[http-to-nats] ${m}`);

let cfg;
try {
  cfg = readHttpToNatsConfig();
} catch (error) {
  console.error(`[http-to-nats] ${error instanceof ConfigError ? error.message : String(error)}`);
  process.exit(2);
}

let connected = false;
log(`connecting to NATS at ${natsServersForLog(cfg.natsUrl)} (waits for it if it is not up yet; POST /events opens once connected)`);
const nc = await connectNats(cfg, {
  name: "pulsecast-http-to-nats",
  inboxPrefix: inboxPrefix("http-to-nats"),
  onStatus: (status, detail) => {
    if (status === "disconnect") connected = false;
    if (status === "reconnect") connected = true;
    if (status !== "pingTimer") log(`nats ${status}${detail ? ` ${detail}` : ""}`);
  },
});
connected = true;
await ensureEventStreams(await nc.jetstreamManager(), cfg);
const js = nc.jetstream();

const server = createHttpToNatsServer({
  secrets: cfg.secrets,
  toleranceS: cfg.toleranceS,
  maxBodyBytes: cfg.maxBodyBytes,
  maxBatchBytes: cfg.maxBatchBytes,
  healthy: () => connected,
  // The checked event goes on the bus (fields the schema does not know are dropped here, not downstream).
  store: (event) => publishEvent(js, event, { timeoutMs: cfg.publishTimeoutMs }),
});
await new Promise<void>((resolve, reject) => {
  server.once("error", reject);
  server.listen(cfg.port, cfg.host, resolve);
});
const address = server.address();
const port = typeof address === "object" && address ? address.port : cfg.port;
log(`ready: POST http://${cfg.host}:${port}/events -> JetStream stream ${cfg.stream}`);

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log(`${signal}: finishing open requests`);
  // Stop accepting, let requests in progress get their JetStream answer, then close NATS.
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(resolve, 10_000).unref();
  });
  await nc.drain().catch(() => nc.close());
  log("stopped");
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
