// The shipped nats-server config (deploy/nats/nats-server.conf): its authorization block is the one the code
// declares (media-node/src/bus/nats-permissions.ts), and a real nats-server started from the file itself (only
// the listen address and store folder moved to a free port and a temp folder) authenticates every client and
// holds each role to its subjects. Without the passwords in its environment the server does not start at all.

import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "nats";
import { afterEach, describe, expect, it } from "vitest";
import { utf8 } from "../../shared/encoding.ts";
import { makeEvent } from "../../shared/envelope.ts";
import { inboxPrefix, NATS_ROLES, natsAuthorizationBlock, passwordVariable } from "../../media-node/src/bus/nats-permissions.ts";
import { ensureEventStreams } from "../../media-node/src/bus/streams.ts";
import { busConfig } from "../../media-node/src/bus/config.ts";
import { ROOT } from "../helpers/edge.ts";
import { natsPasswords } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";
import { spawnGroup } from "../helpers/process.ts";

const SHIPPED = join(ROOT, "deploy/nats/nats-server.conf");
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** The shipped file with only `listen` and `store_dir` changed, written to a temp folder. */
async function shippedConfigOn(port: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "pulsecast-shipped-nats-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const text = readFileSync(SHIPPED, "utf8")
    .replace(/^listen: .*$/m, `listen: 127.0.0.1:${port}`)
    .replace(/^(\s*)store_dir: .*$/m, `$1store_dir: ${JSON.stringify(join(dir, "store"))}`);
  const file = join(dir, "nats-server.conf");
  await writeFile(file, text);
  return file;
}

describe("deploy/nats/nats-server.conf", () => {
  it.each([SHIPPED, join(ROOT, "deploy/nats/nats-cluster.conf")])("%s carries exactly the authorization block the code declares", (file) => {
    const text = readFileSync(file, "utf8");
    const block = text.split("# --- generated: authorization ---\n")[1]?.split("\n# --- end generated: authorization ---")[0];
    expect(block).toBe(natsAuthorizationBlock("env"));
    expect(text).not.toMatch(/^\s*#\s*authorization/m);
  });

  it("started as shipped, refuses unauthenticated clients and a media node publishing notification.requested", async () => {
    const port = await freePort();
    const passwords = natsPasswords();
    const env = { ...process.env, ...Object.fromEntries(NATS_ROLES.map((r) => [passwordVariable(r), passwords[r]])) };
    const server = spawnGroup("nats-server", ["-c", await shippedConfigOn(port)], { env });
    cleanups.push(() => server.stop());
    await server.waitForOutput(/Server is ready/, 15_000);
    const url = `nats://127.0.0.1:${port}`;

    await expect(connect({ servers: url, maxReconnectAttempts: 0 })).rejects.toThrow(/authorization/i);

    const ops = await connect({ servers: url, user: "ops", pass: passwords.ops, maxReconnectAttempts: 0 });
    cleanups.push(() => ops.close());
    await ensureEventStreams(await ops.jetstreamManager(), busConfig());

    const node = await connect({ servers: url, user: "media-node", pass: passwords["media-node"], inboxPrefix: inboxPrefix("media-node"), maxReconnectAttempts: 0 });
    cleanups.push(() => node.close());
    const js = node.jetstream();
    const forged = makeEvent("notification.requested", { notificationId: "n1", userId: "u1", title: "hi", url: "https://evil.example/click" }, { source: "media-node/x", subject: "user/u1" });
    await expect(js.publish(forged.type, utf8(JSON.stringify(forged)), { msgID: forged.id, timeout: 2000 })).rejects.toThrow(/permissions[ _]violation/i);
    const live = makeEvent("stream.live", { streamId: "s1", nodeId: "n1", playbackUrl: "https://cdn.example/s1.m3u8", renditions: [] }, { source: "media-node/x", subject: "stream/s1" });
    await expect(js.publish(live.type, utf8(JSON.stringify(live)), { msgID: live.id, timeout: 2000 })).resolves.toMatchObject({ stream: "EVENTS" });
    expect((await (await ops.jetstreamManager()).streams.info("EVENTS")).state.messages).toBe(1);
  });

  it("does not start while a role's password is missing from its environment", async () => {
    const env = { ...process.env };
    for (const r of NATS_ROLES) delete env[passwordVariable(r)];
    const server = spawnGroup("nats-server", ["-c", await shippedConfigOn(await freePort())], { env });
    cleanups.push(() => server.stop());
    expect(await server.exited).not.toBe(0);
    expect(server.output()).toMatch(/NATS_PASSWORD_/);
  });
});
