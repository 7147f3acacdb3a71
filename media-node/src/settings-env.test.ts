import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseDevVars, readDevVars } from "./settings-env.ts";

describe(".dev.vars", () => {
  it("reads KEY=value and KEY=\"value\" lines and skips the rest", () => {
    expect(parseDevVars('A="1"\nB=two\n# comment\n\nlower=x\nC = "sp ace" \n')).toEqual({ A: "1", B: "two", C: "sp ace" });
  });

  it("is empty when the file does not exist", () => {
    const dir = mkdtempSync(join(tmpdir(), "devvars-"));
    expect(readDevVars(join(dir, "missing"))).toEqual({});
    writeFileSync(join(dir, ".dev.vars"), 'JWT_SECRET="s"\n');
    expect(readDevVars(join(dir, ".dev.vars"))).toEqual({ JWT_SECRET: "s" });
  });
});

describe("rejected values in config errors", () => {
  it("never repeats a credential, and masks URL credentials", async () => {
    const { shownValue } = await import("./settings-env.ts");
    expect(shownValue({ env: "BRIDGE_INGRESS_SECRET", secret: true }, "short-secret")).toBe("<redacted, 12 characters>");
    expect(shownValue({ env: "NATS_URL", secret: false }, "nats://user:pa55@127.0.0.1:4222")).toBe('"nats://…@127.0.0.1:4222"');
    expect(shownValue({ env: "MEDIA_RTMP_PORT", secret: false }, "x".repeat(100))).toBe(JSON.stringify("x".repeat(80) + "…"));
  });

  it("keeps a too-short bridge secret out of the bus config error", async () => {
    const { readNatsToHttpConfig } = await import("./bridges/nats-to-http/config.ts");
    expect(() => readNatsToHttpConfig({ EDGE_INGRESS_SECRET: "tiny-secret" })).toThrow(/EDGE_INGRESS_SECRET=<redacted, 11 characters>: /);
    try {
      readNatsToHttpConfig({ EDGE_INGRESS_SECRET: "tiny-secret" });
    } catch (error) {
      expect((error as Error).message).not.toContain("tiny-secret");
    }
  });
});
