// The README's configuration tables are the settings declarations: every section named in the registry must be
// in the README and equal to the table rendered from its spec (`npm run docs:settings` rewrites them), and every
// variable a Node process reads appears in exactly one section.

import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { readSection } from "../../shared/settings/readme-sections.ts";
import { settingNames, settingsTable } from "../../shared/settings/settings.ts";
import { deadLettersProcessSettings, notifierProcessSettings, httpToNatsProcessSettings, mediaNodeProcessSettings, natsToHttpProcessSettings } from "../../media-node/src/settings/index.ts";
import { settingsRegistry } from "./settings-registry.ts";
import { EDGE_README_SECTION } from "../../edge/src/settings.ts";

const README = readFileSync(resolve(import.meta.dirname, "../../README.md"), "utf8");

describe("README configuration tables", () => {
  it.each(settingsRegistry.map((s) => [s.section, s] as const))("section %s equals its declarations", (_name, { section, spec }) => {
    const current = readSection(README, section);
    expect(current, `README has no <!-- settings:${section} --> section; add the markers, then run npm run docs:settings`).toBeDefined();
    expect(current, `README section ${section} is out of date: run npm run docs:settings`).toBe(settingsTable(spec));
  });

  it("documents every variable each Node process reads, each once", () => {
    // The edge and the Node processes are separate runtimes that may share a name (a secret both sides hold):
    // each runtime documents a variable once.
    const documented = settingsRegistry.filter((s) => s.section !== EDGE_README_SECTION).flatMap((s) => settingNames(s.spec));
    expect(new Set(documented).size).toBe(documented.length);
    for (const spec of [mediaNodeProcessSettings, httpToNatsProcessSettings, natsToHttpProcessSettings, deadLettersProcessSettings, notifierProcessSettings]) {
      for (const name of settingNames(spec)) expect(documented).toContain(name);
    }
  });

  it("has no section left over that no declaration backs", () => {
    const names = new Set(settingsRegistry.map((s) => s.section));
    for (const [, name] of README.matchAll(/<!-- settings:([A-Za-z0-9_-]+) -->/g)) expect(names.has(name!), `README section ${name} has no entry in the registry`).toBe(true);
  });
});
