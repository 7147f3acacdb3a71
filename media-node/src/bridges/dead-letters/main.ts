// Dead-letter tool: `node media-node/src/bridges/dead-letters/main.ts list [type]` prints one JSON line per dead
// letter; `... redrive [type]` sends them through the NATS -> HTTP bridge again. Settings: the NATS connection
// and stream groups, as for the bridges (media-node/src/settings/nats.ts); it runs with the operator's credentials.

import { connectNats } from "../../bus/connect.ts";
import { inboxPrefix } from "../../bus/nats-permissions.ts";
import { ConfigError, readDeadLettersConfig } from "../../settings/processes.ts";
import { listDeadLetters, redriveDeadLetters } from "./dead-letters.ts";

const [command, type] = process.argv.slice(2);
if (command !== "list" && command !== "redrive") {
  console.error("usage: dead-letters list [event-type] | redrive [event-type]");
  process.exit(2);
}
let cfg;
try {
  cfg = readDeadLettersConfig();
} catch (error) {
  console.error(`[dead-letters] ${error instanceof ConfigError ? error.message : String(error)}`);
  process.exit(2);
}
const nc = await connectNats(cfg, { name: "pulsecast-dead-letters", inboxPrefix: inboxPrefix("ops") });
try {
  const jsm = await nc.jetstreamManager();
  if (command === "list") {
    for (const { letter } of await listDeadLetters(jsm, cfg.deadLetterStream, type)) console.log(JSON.stringify(letter));
  } else {
    const done = await redriveDeadLetters(nc.jetstream(), jsm, cfg.deadLetterStream, type);
    console.error(`redriven: ${done.length}`);
  }
} finally {
  await nc.close();
}
