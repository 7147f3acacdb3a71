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
