import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SettingsError } from "../../../shared/settings/settings.ts";
import { isLoopbackHost, settingsEnv } from "./env.ts";
import { natsServersForLog } from "./nats.ts";
import { readDeadLettersConfig, readHttpToNatsConfig, readMediaNodeSettings, readNatsToHttpConfig } from "./processes.ts";

const nats = { NATS_USER: "media-node", NATS_PASSWORD: "a-password-of-16-chars" };
const mediaSecrets = { ...nats, PUBLISH_TOKEN_SECRET: "p".repeat(24) };

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof SettingsError) return error.problems;
    throw error;
  }
  return [];
}

describe("where settings come from", () => {
  const dir = mkdtempSync(join(tmpdir(), "devvars-"));
  const devVars = join(dir, ".dev.vars");
  writeFileSync(devVars, 'PUBLISH_TOKEN_SECRET="from-dev-vars-0123456789"\nMEDIA_RTMP_PORT="1111"\n');

  it("reads .dev.vars only when PULSECAST_DEV asks for it, and the environment always wins", () => {
    expect(settingsEnv({ MEDIA_RTMP_PORT: "2222" }, devVars)).toEqual({ MEDIA_RTMP_PORT: "2222" });
    expect(settingsEnv({ NODE_ENV: "development" }, devVars).PUBLISH_TOKEN_SECRET).toBeUndefined();
    expect(settingsEnv({ PULSECAST_DEV: "1", MEDIA_RTMP_PORT: "2222" }, devVars)).toEqual({
      PULSECAST_DEV: "1",
      MEDIA_RTMP_PORT: "2222",
      PUBLISH_TOKEN_SECRET: "from-dev-vars-0123456789",
    });
  });

  it("knows loopback addresses", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ["0.0.0.0", "::", "10.0.0.5", "example.com", "128.0.0.1"]) expect(isLoopbackHost(h)).toBe(false);
  });
});

describe("process settings", () => {
  it("the media node lists every missing secret at once, with no default for any of them", () => {
    const problems = problemsOf(() => readMediaNodeSettings({}));
    expect(problems.join("\n")).toMatch(/PUBLISH_TOKEN_SECRET is required/);
    expect(problems.join("\n")).toMatch(/NATS credentials are required/);
    expect(readMediaNodeSettings(mediaSecrets).config.publishTokenSecret).toBe("p".repeat(24));
  });

  it("a development run refuses every listener beyond loopback, naming each", () => {
    const problems = problemsOf(() => readMediaNodeSettings({ ...mediaSecrets, PULSECAST_DEV: "1", MEDIA_RTMP_HOST: "0.0.0.0", MEDIA_OPS_HOST: "10.0.0.5" }));
    expect(problems).toHaveLength(2);
    expect(problems.join("\n")).toMatch(/MEDIA_RTMP_HOST="0.0.0.0" is beyond loopback/);
    expect(problems.join("\n")).toMatch(/MEDIA_OPS_HOST="10.0.0.5" is beyond loopback/);
    // The same listener is fine with real secrets and no development flag.
    expect(readMediaNodeSettings({ ...mediaSecrets, MEDIA_RTMP_HOST: "0.0.0.0" }).config.rtmpHost).toBe("0.0.0.0");
    expect(problemsOf(() => readHttpToNatsConfig({ ...nats, BRIDGE_INGRESS_SECRET: "b".repeat(20), PULSECAST_DEV: "1", HTTP_TO_NATS_HOST: "0.0.0.0" })).join()).toMatch(/HTTP_TO_NATS_HOST/);
    expect(problemsOf(() => readNatsToHttpConfig({ ...nats, EDGE_INGRESS_SECRET: "e".repeat(20), PULSECAST_DEV: "1", METRICS_HOST: "0.0.0.0" })).join()).toMatch(/METRICS_HOST/);
  });

  it("every process needs exactly one NATS credential, never inside the URL", () => {
    expect(problemsOf(() => readDeadLettersConfig({})).join()).toMatch(/NATS credentials are required/);
    expect(problemsOf(() => readDeadLettersConfig({ ...nats, NATS_TOKEN: "t".repeat(20) })).join()).toMatch(/one way to authenticate/);
    expect(problemsOf(() => readDeadLettersConfig({ NATS_USER: "ops" })).join()).toMatch(/NATS_USER and NATS_PASSWORD must be set together/);
    expect(problemsOf(() => readDeadLettersConfig({ ...nats, NATS_TLS_CERT_FILE: "/c.pem" })).join()).toMatch(/NATS_TLS_KEY_FILE/);
    const leaked = problemsOf(() => readDeadLettersConfig({ ...nats, NATS_URL: "nats://ops:hunter2hunter2@10.0.0.1:4222" }));
    expect(leaked.join()).toMatch(/must not carry credentials/);
    expect(leaked.join()).not.toContain("hunter2");
    expect(readDeadLettersConfig({ NATS_CREDS_FILE: "/etc/pulsecast/ops.creds", NATS_URL: "nats://a:4222,tls://b:4222" }).natsUrl).toBe("nats://a:4222,tls://b:4222");
  });

  it("low-latency announcements need the edge's ingress secret to sign with", () => {
    expect(problemsOf(() => readMediaNodeSettings({ ...mediaSecrets, LLHLS_EDGE_URL: "http://127.0.0.1:8787" })).join()).toMatch(/LLHLS_EDGE_URL is set but EDGE_INGRESS_SECRET is not/);
    const llhls = readMediaNodeSettings({ ...mediaSecrets, LLHLS_EDGE_URL: "http://127.0.0.1:8787", EDGE_INGRESS_SECRET: "e".repeat(20) }).llhls;
    expect(llhls).toEqual({ llhlsEdgeUrl: "http://127.0.0.1:8787", announceSecrets: ["e".repeat(20)], partMs: 333, announceTimeoutMs: 2000 });
    expect(readMediaNodeSettings(mediaSecrets).llhls.llhlsEdgeUrl).toBeUndefined();
  });

  it("logs show the NATS servers without any user info", () => {
    expect(natsServersForLog("nats://u:p@a:4222, tls://b:4222")).toBe("nats://a:4222,tls://b:4222");
  });
});
