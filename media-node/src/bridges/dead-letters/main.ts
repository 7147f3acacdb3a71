// Dead-letter tool: `node media-node/src/bridges/dead-letters/main.ts list [type]` prints one JSON line per dead
// letter; `... redrive [type]` sends them through the NATS -> HTTP bridge again. NATS_URL, NATS_STREAM and
// NATS_DEAD_LETTER_STREAM as for the bridges (media-node/src/bus/config.ts).

import { readBusConfig } from "../../bus/config.ts";
import { connectNats } from "../../bus/connect.ts";
import { listDeadLetters, redriveDeadLetters } from "./dead-letters.ts";

const [command, type] = process.argv.slice(2);
if (command !== "list" && command !== "redrive") {
  console.error("usage: dead-letters list [event-type] | redrive [event-type]");
  process.exit(2);
}
const cfg = readBusConfig();
const nc = await connectNats(cfg.natsUrl, { name: "pulsecast-dead-letters" });
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
