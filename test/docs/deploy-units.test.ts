// The shipped systemd units start each part the way the settings expect in production: settings from a root-only
// env file of its own, never the development flag, and a script that exists.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/edge.ts";

const units = {
  "pulsecast-media-node.service": { env: "/etc/pulsecast/media-node.env", script: "media-node/src/main.ts" },
  "pulsecast-nats-to-http.service": { env: "/etc/pulsecast/nats-to-http.env", script: "media-node/src/bridges/nats-to-http/main.ts" },
  "pulsecast-http-to-nats.service": { env: "/etc/pulsecast/http-to-nats.env", script: "media-node/src/bridges/http-to-nats/main.ts" },
  "pulsecast-notifier.service": { env: "/etc/pulsecast/notifier.env", script: "media-node/src/notify/main.ts" },
};

describe("deploy/systemd", () => {
  it.each(Object.entries(units))("%s reads its own env file, never runs as a development run, and starts an existing script", (unit, { env, script }) => {
    const text = readFileSync(join(ROOT, "deploy/systemd", unit), "utf8");
    expect(text).toContain(`EnvironmentFile=${env}\n`);
    expect(text).toContain("UnsetEnvironment=PULSECAST_DEV\n");
    expect(text).not.toMatch(/^Environment=.*PULSECAST_DEV/m);
    expect(text).toContain(`ExecStart=/opt/pulsecast/node_modules/.bin/node ${script}\n`);
    expect(existsSync(join(ROOT, script))).toBe(true);
  });

  it("gives nats-server the passwords its shipped config reads", () => {
    const text = readFileSync(join(ROOT, "deploy/systemd/nats-server.service.d/pulsecast.conf"), "utf8");
    expect(text).toMatch(/^EnvironmentFile=\/etc\/pulsecast\/nats-server\.env$/m);
  });
});
