import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EDGE_SETTINGS } from "../../edge/src/settings.ts";
import { settingNames } from "../../shared/settings/settings.ts";
import { ROOT } from "../helpers/edge.ts";

// The edge's settings are declared once (edge/src/settings.ts); wrangler.toml and env.ts list the same variables,
// so an operator reading either finds every one, and a variable cannot exist in one place only.

const declared = settingNames(EDGE_SETTINGS).sort();

describe("edge variables", () => {
  it("wrangler.toml names every declared edge variable", () => {
    const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
    const missing = declared.filter((name) => !new RegExp(`\\b${name}\\b`).test(toml));
    expect(missing).toEqual([]);
    // and sets no var that is not declared
    const vars = toml.slice(toml.indexOf("[vars]"), toml.indexOf("[[", toml.indexOf("[vars]")));
    const set = [...vars.matchAll(/^([A-Z][A-Z0-9_]*)\s*=/gm)].map((m) => m[1]!);
    expect(set.filter((name) => !declared.includes(name))).toEqual([]);
  });

  it("env.ts types exactly the declared edge variables", () => {
    const source = readFileSync(join(ROOT, "edge/src/env.ts"), "utf8");
    const typed = [...source.matchAll(/^\s+([A-Z][A-Z0-9_]*)\?: string;/gm)].map((m) => m[1]!).sort();
    expect(typed).toEqual(declared);
  });
});
