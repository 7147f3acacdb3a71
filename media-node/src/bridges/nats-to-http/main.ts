// NATS -> HTTP bridge process: `node media-node/src/bridges/nats-to-http/main.ts`.
// Settings come from the environment (see ./config.ts); run as many replicas as you like.

import { createNatsToHttpBridge } from "./bridge.ts";
import { ConfigError, readNatsToHttpConfig } from "./config.ts";
import { createBridgeMetrics, serveMetrics } from "./metrics.ts";

const log = (m: string) => console.log(`[nats-to-http] ${m}`);

let cfg;
try {
  cfg = readNatsToHttpConfig();
} catch (error) {
  console.error(`[nats-to-http] ${error instanceof ConfigError ? error.message : String(error)}`);
  process.exit(2);
}

const metrics = createBridgeMetrics();
const bridge = createNatsToHttpBridge(cfg, metrics, log);
const { server, port } = await serveMetrics(metrics.registry, cfg.metricsHost, cfg.metricsPort, () => bridge.connected);
await bridge.start();
log(`ready: consumer ${cfg.consumer} on ${cfg.stream} -> ${cfg.edgeUrl}, concurrency ${cfg.concurrency}, metrics http://${cfg.metricsHost}:${port}/metrics`);

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log(`${signal}: finishing in-flight events`);
  await bridge.stop();
  server.close();
  log("stopped");
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
