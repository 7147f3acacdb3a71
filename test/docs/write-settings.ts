// `npm run docs:settings`: rewrites every generated part of the docs from the declarations, so they cannot drift:
// the README's configuration tables (one per registry entry) and the authorization block of the shipped
// nats-server configs (single server and cluster). readme-settings.test.ts and test/bus/nats-config.test.ts fail until this has been run.

import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { natsAuthorizationBlock } from "../../media-node/src/bus/nats-permissions.ts";
import { writeSection } from "../../shared/settings/readme-sections.ts";
import { settingsTable } from "../../shared/settings/settings.ts";
import { settingsRegistry } from "./settings-registry.ts";

const ROOT = resolve(import.meta.dirname, "../..");

const readmePath = resolve(ROOT, "README.md");
let readme = readFileSync(readmePath, "utf8");
for (const { section, spec } of settingsRegistry) readme = writeSection(readme, section, settingsTable(spec));
writeFileSync(readmePath, readme);

const open = "# --- generated: authorization ---\n";
const close = "\n# --- end generated: authorization ---";
for (const name of ["nats-server.conf", "nats-cluster.conf"]) {
  const natsConfPath = resolve(ROOT, "deploy/nats", name);
  const conf = readFileSync(natsConfPath, "utf8");
  const start = conf.indexOf(open);
  const end = conf.indexOf(close);
  if (start < 0 || end < start) throw new Error(`${natsConfPath} has no generated authorization block`);
  writeFileSync(natsConfPath, conf.slice(0, start + open.length) + natsAuthorizationBlock("env") + conf.slice(end));
}

console.log(`updated ${settingsRegistry.length} README settings sections and the NATS authorization blocks`);
