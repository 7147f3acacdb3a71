// Email notifier process: `node media-node/src/notify/main.ts`. Settings from the environment (README
// "Configuration", email notifier); run as many replicas as you like (they share one durable consumer).
import { ConfigError, readNotifierConfig } from "../settings/index.ts";
import { createNotifier } from "./notifier.ts";
import { smtpTransport } from "./transport.ts";

const log = (m: string) => console.log(`[notifier] ${m}`);

let cfg;
try {
  cfg = readNotifierConfig();
} catch (error) {
  console.error(`[notifier] ${error instanceof ConfigError ? error.message : String(error)}`);
  process.exit(2);
}

const notifier = createNotifier(cfg, smtpTransport(cfg), log);
await notifier.start();
log(`ready: consumer ${cfg.consumer} on ${cfg.edgeStream} (notification.email) -> smtp://${cfg.smtpHost}:${cfg.smtpPort}`);

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log(`${signal}: finishing emails in flight`);
  await notifier.stop();
  log("stopped");
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
