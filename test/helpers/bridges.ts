// Starts the two bridge processes for cross-process tests, exactly as production runs them
// (`node media-node/src/bridges/<name>/main.ts`), on 127.0.0.1 and free ports, with the test secrets and the
// NATS credentials of their role (the test server runs with authorization on).

import { join } from "node:path";
import { ROOT, TEST_SECRETS } from "./edge.ts";
import type { NatsServer } from "./nats.ts";
import { freePort } from "./ports.ts";
import { type GroupProcess, spawnGroup } from "./process.ts";

export interface BridgeProcess {
  process: GroupProcess;
  /** SIGTERM and wait (clean shutdown) */
  stop(): Promise<void>;
  /** SIGKILL (a replica dying mid-delivery) */
  kill(): Promise<void>;
}

export interface NatsToHttpBridgeProcess extends BridgeProcess {
  metricsUrl: string;
  /** reads one metric's value (summed over labels) from /metrics */
  metric(name: string): Promise<number>;
}

export interface HttpToNatsBridgeProcess extends BridgeProcess {
  /** POST target: http://127.0.0.1:<port>/events */
  url: string;
  port: number;
}

function launch(name: string, env: Record<string, string>, ready: RegExp) {
  // process.execPath is the Node 22 running the tests; the bridge runs its TypeScript directly.
  const proc = spawnGroup(process.execPath, [join(ROOT, "media-node/src/bridges", name, "main.ts")], {
    cwd: ROOT,
    env: { ...process.env, ...env },
  });
  return { proc, ready: proc.waitForOutput(ready, 30_000) };
}

function controls(proc: GroupProcess): BridgeProcess {
  return { process: proc, stop: () => proc.stop(), kill: () => proc.kill() };
}

/** A single server or a cluster: what a process needs is its NATS environment. */
type NatsEnv = Pick<NatsServer, "env">;

export async function startNatsToHttpBridge(opts: { nats: NatsEnv; edgeUrl: string; env?: Record<string, string> }): Promise<NatsToHttpBridgeProcess> {
  const metricsPort = await freePort();
  const { proc, ready } = launch(
    "nats-to-http",
    { ...opts.nats.env("nats-to-http"), EDGE_EVENTS_URL: opts.edgeUrl, EDGE_INGRESS_SECRET: TEST_SECRETS.EDGE_INGRESS_SECRET, METRICS_PORT: String(metricsPort), ...opts.env },
    /\bready: consumer\b/,
  );
  await ready;
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  return {
    ...controls(proc),
    metricsUrl,
    async metric(name) {
      const text = await (await fetch(metricsUrl)).text();
      let sum = 0;
      for (const line of text.split("\n")) {
        const m = line.match(/^([a-z_]+)(?:\{[^}]*\})? ([0-9.e+-]+)$/);
        if (m && m[1] === name) sum += Number(m[2]);
      }
      return sum;
    },
  };
}

export async function startHttpToNatsBridge(opts: { nats: NatsEnv; env?: Record<string, string> }): Promise<HttpToNatsBridgeProcess> {
  const port = await freePort();
  const { proc, ready } = launch(
    "http-to-nats",
    { ...opts.nats.env("http-to-nats"), BRIDGE_INGRESS_SECRET: TEST_SECRETS.BRIDGE_INGRESS_SECRET, HTTP_TO_NATS_PORT: String(port), ...opts.env },
    /\bready: POST\b/,
  );
  await ready;
  return { ...controls(proc), url: `http://127.0.0.1:${port}/events`, port };
}
