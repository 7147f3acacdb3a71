// Settings and listeners of the real Node processes (`node media-node/src/main.ts`, the bridges' main.ts), started
// the way production starts them: secrets have no default anywhere, a development run (PULSECAST_DEV=1) stays on
// loopback, NATS credentials never show up in output, every process takes a list of NATS URLs, and the media
// node keeps /healthz and /metrics off its public listener and answers a failing health check without details.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startNatsToHttpBridge } from "../helpers/bridges.ts";
import { ROOT, TEST_SECRETS } from "../helpers/edge.ts";
import { startNats } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";
import { type GroupProcess, spawnGroup } from "../helpers/process.ts";
import { waitFor } from "../helpers/wait.ts";
import { startReceiver } from "./receiver.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** Only what a bare systemd unit would have: no NODE_ENV, no secrets, nothing from the test runner's env. */
const bareEnv = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" };

function startProcess(script: string, env: Record<string, string>): GroupProcess {
  const proc = spawnGroup(process.execPath, [join(ROOT, script)], { cwd: ROOT, env: { ...bareEnv, ...env } });
  cleanups.push(() => proc.stop());
  return proc;
}

/** Runs a process expected to refuse to start: its exit code and everything it printed. */
async function refusal(script: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const proc = startProcess(script, env);
  const code = await Promise.race([proc.exited, new Promise<"running">((r) => setTimeout(() => r("running"), 20_000))]);
  if (code === "running") throw new Error(`${script} kept running instead of refusing:\n${proc.output()}`);
  return { code, output: proc.output() };
}

describe("secrets have no default", () => {
  it("the media node without NODE_ENV and without secrets refuses to start, listing every missing secret", async () => {
    const { code, output } = await refusal("media-node/src/main.ts", { MEDIA_RTMP_PORT: String(await freePort()) });
    expect(code).not.toBe(0);
    expect(output).toContain("PUBLISH_TOKEN_SECRET is required");
    expect(output).toContain("NATS credentials are required");
  });

  it("both bridges refuse to start without their secrets, naming each", async () => {
    const h2n = await refusal("media-node/src/bridges/http-to-nats/main.ts", {});
    expect(h2n.code).not.toBe(0);
    expect(h2n.output).toContain("BRIDGE_INGRESS_SECRET is required");
    expect(h2n.output).toContain("NATS credentials are required");
    const n2h = await refusal("media-node/src/bridges/nats-to-http/main.ts", {});
    expect(n2h.code).not.toBe(0);
    expect(n2h.output).toContain("EDGE_INGRESS_SECRET is required");
    expect(n2h.output).toContain("NATS credentials are required");
  });

  it("a development run (PULSECAST_DEV=1) refuses to listen beyond loopback", async () => {
    const { code, output } = await refusal("media-node/src/main.ts", {
      PULSECAST_DEV: "1",
      MEDIA_RTMP_HOST: "0.0.0.0",
      PUBLISH_TOKEN_SECRET: TEST_SECRETS.PUBLISH_TOKEN_SECRET,
      NATS_USER: "media-node",
      NATS_PASSWORD: "a-password-of-16-chars",
    });
    expect(code).not.toBe(0);
    expect(output).toMatch(/MEDIA_RTMP_HOST=\\?"0\.0\.0\.0\\?" is beyond loopback/);
  });
});

describe("NATS credentials and server lists", () => {
  it("a NATS_URL carrying a password is refused without printing the password", async () => {
    const { code, output } = await refusal("media-node/src/bridges/nats-to-http/main.ts", {
      NATS_URL: "nats://ops:hunter2-hunter2-hunter2@127.0.0.1:4222",
      NATS_USER: "nats-to-http",
      NATS_PASSWORD: "a-password-of-16-chars",
      EDGE_INGRESS_SECRET: TEST_SECRETS.EDGE_INGRESS_SECRET,
    });
    expect(code).not.toBe(0);
    expect(output).toMatch(/NATS_URL must not carry credentials/);
    expect(output).not.toContain("hunter2");
  });

  it("a bridge given several NATS URLs connects to one that is up, and logs neither password nor user info", async () => {
    const nats = await startNats();
    cleanups.push(() => nats.stop());
    const receiver = await startReceiver(await freePort());
    cleanups.push(() => receiver.close());
    const dead = await freePort();
    const bridge = await startNatsToHttpBridge({ nats, edgeUrl: receiver.url, env: { NATS_URL: `nats://127.0.0.1:${dead},${nats.url}` } });
    cleanups.push(() => bridge.stop());
    const output = bridge.process.output();
    expect(output).toContain(`nats://127.0.0.1:${dead},${nats.url}`);
    expect(output).not.toContain(nats.passwords["nats-to-http"]);
  });
});

describe("the media node's listeners", () => {
  it("serves /healthz and /metrics only on the operations listener, and a failing check says which, not why", async () => {
    const nats = await startNats();
    cleanups.push(() => nats.stop());
    const root = await mkdtemp(join(tmpdir(), "pulsecast-ops-"));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const [rtmpPort, httpPort, opsPort] = [await freePort(), await freePort(), await freePort()];
    const node = startProcess("media-node/src/main.ts", {
      ...nats.env("media-node"),
      PUBLISH_TOKEN_SECRET: TEST_SECRETS.PUBLISH_TOKEN_SECRET,
      MEDIA_RTMP_PORT: String(rtmpPort),
      MEDIA_HTTP_PORT: String(httpPort),
      MEDIA_OPS_PORT: String(opsPort),
      MEDIA_HEALTH_CACHE_MS: "0",
      MEDIA_WORK_DIR: join(root, "work"),
      STORAGE_FS_DIR: join(root, "store"),
      OUTBOX_DIR: join(root, "outbox"),
    });
    await node.waitForOutput(/"msg":"media node ready"/, 30_000);
    const pub = `http://127.0.0.1:${httpPort}`;
    const ops = `http://127.0.0.1:${opsPort}`;
    expect((await fetch(`${pub}/healthz`)).status).toBe(404);
    expect((await fetch(`${pub}/metrics`)).status).toBe(404);
    expect((await fetch(`${ops}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${ops}/metrics`)).text()).toContain("pulsecast_live_streams");

    await nats.stop();
    const res = await waitFor("a failing health check", async () => {
      const r = await fetch(`${ops}/healthz`);
      return r.status === 503 ? r : null;
    });
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({ status: "not ready", checks: { bus: { ok: false } } });
    expect(text).not.toContain(String(nats.port));
    expect(text).not.toContain(root);
    expect(node.output()).toMatch(/"msg":"health check failing"/);
  });
});
