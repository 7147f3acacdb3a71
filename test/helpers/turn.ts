// coturn (Debian's `turnserver`) on 127.0.0.1 and a free port, checking the time-limited shared-secret credentials
// (`use-auth-secret`) the edge mints, relaying to loopback peers. Started by tests, stopped after.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { type GroupProcess, spawnGroup } from "./process.ts";

export interface TurnServer {
  port: number;
  /** the TURN URI of its UDP listener */
  url: string;
  process: GroupProcess;
  stop(): Promise<void>;
}

export async function startTurn(secret: string): Promise<TurnServer> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "pulsecast-turn-"));
  const proc = spawnGroup("turnserver", [
    "-n", // no config file: everything is here
    "--listening-ip=127.0.0.1",
    "--relay-ip=127.0.0.1",
    `--listening-port=${port}`,
    "--use-auth-secret",
    `--static-auth-secret=${secret}`,
    "--realm=pulsecast.test",
    "--no-tls",
    "--no-dtls",
    "--no-cli",
    "--fingerprint",
    // The peers of a test are on 127.0.0.1; a real deployment must not allow this.
    "--allow-loopback-peers",
    `--pidfile=${join(dir, "turnserver.pid")}`,
    `--userdb=${join(dir, "turndb")}`,
    "--log-file=stdout",
    "--simple-log",
  ]);
  await proc.waitForOutput(/IO method \(admin thread\)/, 15_000);
  return {
    port,
    url: `turn:127.0.0.1:${port}?transport=udp`,
    process: proc,
    async stop() {
      await proc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
