// The shipped systemd units, run on this machine the way systemd runs them: each unit's ExecStart with the
// environment systemd gives it (a clean environment, then Environment=, then its EnvironmentFile, minus
// UnsetEnvironment), in its WorkingDirectory, as its User, stopped with its KillSignal. The env files are the shipped
// examples (deploy/env/*.env.example) with this machine's values put in: free ports, local NATS servers, s3rver for
// R2, temp folders for /var/lib. `/opt/pulsecast` is this checkout. The three NATS servers run Debian's
// nats-server unit with the cluster drop-in, as the `nats` user; the Pulsecast units' User=pulsecast runs as that
// user when it exists, else as `nobody` (the same: unprivileged, no home, no write access outside its state).
// Before that, `systemd-analyze verify` checks every unit (paths mapped the same way).

import { execFileSync } from "node:child_process";
import { chownSync, existsSync, readFileSync } from "node:fs";
import { chmod, copyFile, cp, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { connect } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, TEST_SECRETS } from "../helpers/edge.ts";
import { natsPasswords } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";
import { type GroupProcess, run, spawnGroup } from "../helpers/process.ts";
import { startS3, type S3Server } from "../helpers/s3.ts";
import { startSmtp, type SmtpReceiver } from "../helpers/smtp.ts";
import { inboxPrefix, NATS_ROLES, passwordVariable } from "../../media-node/src/bus/nats-permissions.ts";

const SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const UNITS = ["pulsecast-media-node.service", "pulsecast-nats-to-http.service", "pulsecast-http-to-nats.service", "pulsecast-notifier.service"];

interface Unit {
  user?: string;
  workingDirectory?: string;
  environment: Record<string, string>;
  environmentFiles: string[];
  unset: string[];
  execStart: string[];
  killSignal: string;
  timeoutStopS: number;
}

/** The [Service] settings this test needs, from a unit and its drop-ins, with systemd's reset rule for ExecStart=. */
export function parseUnit(...texts: string[]): Unit {
  const unit: Unit = { environment: {}, environmentFiles: [], unset: [], execStart: [], killSignal: "SIGTERM", timeoutStopS: 90 };
  for (const text of texts) {
    let section = "";
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (!line || line.startsWith("#") || line.startsWith(";")) continue;
      if (line.startsWith("[")) {
        section = line;
        continue;
      }
      if (section !== "[Service]") continue;
      const eq = line.indexOf("=");
      const key = line.slice(0, eq);
      const value = line.slice(eq + 1);
      if (key === "User") unit.user = value;
      else if (key === "WorkingDirectory") unit.workingDirectory = value;
      else if (key === "EnvironmentFile") unit.environmentFiles.push(value.replace(/^-/, ""));
      else if (key === "UnsetEnvironment") unit.unset.push(...value.split(/\s+/));
      else if (key === "KillSignal") unit.killSignal = value;
      else if (key === "TimeoutStopSec") unit.timeoutStopS = Number(value);
      else if (key === "Environment") for (const m of value.matchAll(/(?:"([^"]*)"|(\S+))/g)) {
        const item = m[1] ?? m[2]!;
        const i = item.indexOf("=");
        unit.environment[item.slice(0, i)] = item.slice(i + 1);
      }
      else if (key === "ExecStart") unit.execStart = value === "" ? [] : value.split(/\s+/);
    }
  }
  return unit;
}

/** An EnvironmentFile as systemd reads it: KEY=VALUE lines, optional quotes, comments. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2]!;
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    out[m[1]!] = v;
  }
  return out;
}

/** systemd's environment for a unit: a clean one, Environment=, the env files, minus UnsetEnvironment. */
function unitEnv(unit: Unit, files: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { PATH: SYSTEMD_PATH, LANG: "C.UTF-8", ...unit.environment };
  for (const f of unit.environmentFiles) {
    const text = files[f];
    if (text === undefined) throw new Error(`no env file ${f} for this machine`);
    Object.assign(env, parseEnvFile(text));
  }
  for (const u of unit.unset) delete env[u];
  return env;
}

/** uid/gid of a user, or undefined when the system has no such user. */
function userIds(name: string): { uid: number; gid: number } | undefined {
  try {
    const u = Number(execFileSync("id", ["-u", name]).toString().trim());
    const g = Number(execFileSync("id", ["-g", name]).toString().trim());
    return { uid: u, gid: g };
  } catch {
    return undefined;
  }
}

describe("deploy/systemd units, run as systemd would on this machine", () => {
  let root: string;
  let s3: S3Server;
  let smtp: SmtpReceiver;
  const procs: GroupProcess[] = [];
  const files: Record<string, string> = {};
  const runAs = userIds("pulsecast") ?? userIds("nobody");
  const natsUser = userIds("nats");
  const asRoot = userInfo().uid === 0;
  let natsUrl = "";
  const passwords = natsPasswords();
  const ports: Record<string, number> = {};

  /** The env example with CHANGE-ME values and this machine's addresses put in. */
  function render(example: string, values: Record<string, string>): string {
    const text = readFileSync(join(ROOT, "deploy/env", example), "utf8");
    const env = parseEnvFile(text);
    const out = Object.entries({ ...env, ...values }).map(([k, v]) => `${k}=${v}`);
    const left = out.filter((l) => l.includes("CHANGE-ME"));
    if (left.length > 0) throw new Error(`${example}: no value for ${left.join(", ")}`);
    return `${out.join("\n")}\n`;
  }

  function start(command: string[], env: Record<string, string>, cwd: string | undefined, ids: { uid: number; gid: number } | undefined): GroupProcess {
    const [bin, ...args] = command.map((c) => c.replace("/opt/pulsecast", ROOT));
    const proc = spawnGroup(bin!, args, { cwd: cwd?.replace("/opt/pulsecast", ROOT), env, ...(asRoot && ids ? { uid: ids.uid, gid: ids.gid } : {}) });
    procs.push(proc);
    return proc;
  }

  /** A folder the unit's user may write (a StateDirectory's stand-in). */
  async function stateDir(name: string, ids: { uid: number; gid: number } | undefined): Promise<string> {
    const dir = join(root, name);
    await mkdir(dir, { recursive: true });
    if (asRoot && ids) chownSync(dir, ids.uid, ids.gid);
    return dir;
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "pulsecast-units-"));
    await chmod(root, 0o755);
    s3 = await startS3({ bucket: "pulsecast-media" });
    smtp = await startSmtp();
  });
  afterAll(async () => {
    for (const p of procs.reverse()) await p.stop(2000).catch(() => undefined);
    await s3?.stop();
    await smtp?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("passes systemd-analyze verify (every unit and the nats-server drop-ins)", async () => {
    const dir = join(root, "verify");
    await mkdir(dir);
    for (const unit of UNITS) {
      const text = readFileSync(join(ROOT, "deploy/systemd", unit), "utf8").replaceAll("/opt/pulsecast/node_modules/.bin/node", join(ROOT, "node_modules/.bin/node")).replaceAll("WorkingDirectory=/opt/pulsecast", `WorkingDirectory=${ROOT}`);
      await writeFile(join(dir, unit), text);
    }
    await copyFile("/lib/systemd/system/nats-server.service", join(dir, "nats-server.service"));
    await cp(join(ROOT, "deploy/systemd/nats-server.service.d"), join(dir, "nats-server.service.d"), { recursive: true });
    const result = await run("systemd-analyze", ["verify", ...(await readdir(dir)).filter((f) => f.endsWith(".service")).map((f) => join(dir, f))]);
    expect(result.stderr + result.stdout).toBe("");
    expect(result.code).toBe(0);
  });

  it("starts a 3-server NATS cluster from Debian's unit with the cluster drop-in, as the nats user", async () => {
    // Ports are taken right before use: one found free long before could be another test's by then.
    for (const name of ["nats-1", "nats-2", "nats-3", "route-1", "route-2", "route-3", "mon-1", "mon-2", "mon-3"]) ports[name] = await freePort();
    const unit = parseUnit(readFileSync("/lib/systemd/system/nats-server.service", "utf8"), readFileSync(join(ROOT, "deploy/systemd/nats-server.service.d/pulsecast-cluster.conf"), "utf8"));
    expect(unit.execStart).toEqual(["/usr/sbin/nats-server", "-c", "/etc/nats/nats-cluster.conf"]);
    expect(unit.user).toBe("nats");
    // /etc/nats: the shipped cluster config and a routes.conf for these three servers
    const etc = join(root, "etc-nats");
    await mkdir(etc);
    await copyFile(join(ROOT, "deploy/nats/nats-cluster.conf"), join(etc, "nats-cluster.conf"));
    const routePassword = "route-password-for-this-test-0123";
    await writeFile(join(etc, "routes.conf"), readFileSync(join(ROOT, "deploy/nats/routes.conf.example"), "utf8").replaceAll("CHANGE-ME-route-password", routePassword).replace(/10\.0\.0\.1(\d):6222/g, (_m, n: string) => `127.0.0.1:${ports[`route-${n}`]}`));
    if (asRoot && natsUser) for (const f of ["", "nats-cluster.conf", "routes.conf"]) chownSync(join(etc, f), natsUser.uid, natsUser.gid);
    const servers = [1, 2, 3].map((n) => ({ n, port: ports[`nats-${n}`]! }));
    natsUrl = servers.map((s) => `nats://127.0.0.1:${s.port}`).join(",");
    await Promise.all(
      servers.map(async ({ n, port }) => {
        const store = await stateDir(`nats-store-${n}`, natsUser);
        const envFile = render("nats-server.env.example", {
          NATS_SERVER_NAME: `nats-${n}`,
          NATS_LISTEN: `127.0.0.1:${port}`,
          NATS_CLUSTER_LISTEN: `127.0.0.1:${ports[`route-${n}`]}`,
          NATS_MONITOR_LISTEN: `127.0.0.1:${ports[`mon-${n}`]}`,
          NATS_STORE_DIR: store,
          NATS_ROUTE_PASSWORD: routePassword,
          ...Object.fromEntries(NATS_ROLES.map((r) => [passwordVariable(r), passwords[r]])),
        });
        const env = unitEnv(unit, { "/etc/pulsecast/nats-server.env": envFile });
        const proc = start(unit.execStart.map((a) => a.replace("/etc/nats/", `${etc}/`)), env, undefined, natsUser);
        await proc.waitForOutput(/Server is ready/, 20_000);
      }),
    );
    // JetStream answers once a meta leader is elected
    const nc = await connect({ servers: natsUrl.split(","), user: "ops", pass: passwords.ops, inboxPrefix: inboxPrefix("ops") });
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await (await nc.jetstreamManager({ timeout: 2000 })).getAccountInfo();
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    await nc.close();
    if (asRoot && natsUser) expect((await run("ps", ["-o", "user=", "-p", String(procs.at(-1)!.child.pid)])).stdout.trim()).toBe("nats");
  });

  it.each(UNITS)("%s starts from its env file as its user, and stops cleanly on its KillSignal", async (name) => {
    expect(natsUrl).not.toBe("");
    const unit = parseUnit(readFileSync(join(ROOT, "deploy/systemd", name), "utf8"));
    expect(unit.user).toBe("pulsecast");
    const nats = (role: string) => ({ NATS_URL: natsUrl, NATS_PASSWORD: passwords[role as keyof typeof passwords] });
    for (const p of ["rtmp", "http", "ops", "metrics", "http-to-nats"]) ports[p] = await freePort();
    let envFile: string;
    let ready: RegExp;
    let check: (() => Promise<void>) | undefined;
    if (name === "pulsecast-media-node.service") {
      const state = await stateDir("media-state", runAs);
      envFile = render("media-node.env.example", {
        ...nats("media-node"),
        MEDIA_PUBLIC_RTMP_URL: `rtmp://127.0.0.1:${ports.rtmp}/live`,
        MEDIA_RTMP_HOST: "127.0.0.1",
        MEDIA_RTMP_PORT: String(ports.rtmp),
        MEDIA_HTTP_PORT: String(ports.http),
        MEDIA_OPS_PORT: String(ports.ops),
        PUBLISH_TOKEN_SECRET: TEST_SECRETS.PUBLISH_TOKEN_SECRET,
        S3_ENDPOINT: s3.endpoint,
        S3_ACCESS_KEY_ID: s3.credentials.accessKeyId,
        S3_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
        S3_FORCE_PATH_STYLE: "true",
        UPLOAD_JOURNAL_DIR: join(state, "upload-journal"),
        STREAM_KEYS_EDGE_URL: "http://127.0.0.1:9/",
        INTERNAL_API_TOKEN: TEST_SECRETS.INTERNAL_API_TOKEN,
        MEDIA_WORK_DIR: join(state, "media"),
        OUTBOX_DIR: join(state, "outbox"),
      });
      ready = /"msg":"media node ready"/;
      check = async () => {
        const res = await fetch(`http://127.0.0.1:${ports.ops}/healthz`);
        expect(await res.json()).toMatchObject({ status: "ready", checks: { rtmp: { ok: true }, storage: { ok: true }, bus: { ok: true } } });
      };
    } else if (name === "pulsecast-nats-to-http.service") {
      envFile = render("nats-to-http.env.example", { ...nats("nats-to-http"), EDGE_EVENTS_URL: "http://127.0.0.1:9/hooks/events", EDGE_INGRESS_SECRET: TEST_SECRETS.EDGE_INGRESS_SECRET, METRICS_PORT: String(ports.metrics) });
      ready = /\bready: consumer\b/;
      check = async () => expect((await fetch(`http://127.0.0.1:${ports.metrics}/healthz`)).status).toBe(200);
    } else if (name === "pulsecast-http-to-nats.service") {
      envFile = render("http-to-nats.env.example", { ...nats("http-to-nats"), BRIDGE_INGRESS_SECRET: TEST_SECRETS.BRIDGE_INGRESS_SECRET, HTTP_TO_NATS_PORT: String(ports["http-to-nats"]) });
      ready = /\bready: POST\b/;
      check = async () => expect((await fetch(`http://127.0.0.1:${ports["http-to-nats"]}/healthz`)).status).toBe(200);
    } else {
      envFile = render("notifier.env.example", { ...nats("notifier"), SMTP_HOST: smtp.host, SMTP_PORT: String(smtp.port), SMTP_USER: "notifier", SMTP_PASSWORD: "smtp-password-for-this-test", SMTP_REQUIRE_TLS: "false" });
      ready = /\bready: consumer\b/;
    }
    const envPath = unit.environmentFiles[0]!;
    const env = unitEnv(unit, { [envPath]: envFile });
    expect(env.PULSECAST_DEV).toBeUndefined();
    expect(env.NODE_ENV).toBe("production");
    const proc = start(unit.execStart, env, unit.workingDirectory, runAs);
    await proc.waitForOutput(ready, 60_000);
    await check?.();
    if (asRoot && runAs) expect((await run("ps", ["-o", "uid=", "-p", String(proc.child.pid)])).stdout.trim()).toBe(String(runAs.uid));
    // Stop as systemd does: KillSignal to the main process (KillMode=mixed for the media node), then wait.
    process.kill(proc.child.pid!, unit.killSignal as NodeJS.Signals);
    const code = await Promise.race([proc.exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), unit.timeoutStopS * 1000))]);
    expect(code).toBe(0);
  });

  it("the examples name every setting a production process requires (no default, no value: refused at start)", () => {
    for (const f of ["media-node", "nats-to-http", "http-to-nats", "notifier"]) expect(existsSync(join(ROOT, "deploy/env", `${f}.env.example`))).toBe(true);
    const media = parseEnvFile(readFileSync(join(ROOT, "deploy/env/media-node.env.example"), "utf8"));
    for (const k of ["MEDIA_NODE_ID", "MEDIA_PUBLIC_RTMP_URL", "PUBLISH_TOKEN_SECRET", "NATS_URL", "NATS_REPLICAS", "NATS_USER", "NATS_PASSWORD", "STORAGE_DRIVER", "S3_BUCKET"]) expect(media[k], k).toBeDefined();
    expect(media.NATS_URL!.split(",")).toHaveLength(3);
  });
});
