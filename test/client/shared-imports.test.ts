// ./shared is code both sides (and browsers) load: nothing in it may reach into edge/ or media-node/, whose
// modules assume their own runtime (Workers or Node) and would drag it into the client bundle.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const SHARED = join(ROOT, "shared");

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.name.endsWith(".ts") ? [p] : [];
  });
}

/** Relative specifiers of every `import`/`export … from` and dynamic `import()` in a module's source. */
export function relativeImports(source: string): string[] {
  const found: string[] = [];
  for (const m of source.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.{1,2}\/[^"']+)["']/g)) found.push(m[1]!);
  return found;
}

describe("shared code", () => {
  it("finds relative imports in the forms the project writes", () => {
    const src = `import { a } from "../x.ts";\nimport type { B } from './y.ts';\nexport { c } from "../../edge/z.ts";\nconst d = await import("./d.ts");\nimport "./side.ts";`;
    expect(relativeImports(src)).toEqual(["../x.ts", "./y.ts", "../../edge/z.ts", "./d.ts", "./side.ts"]);
  });

  it("imports nothing from edge/ or media-node/", () => {
    const files = tsFiles(SHARED);
    expect(files.length).toBeGreaterThan(10);
    const offending: string[] = [];
    for (const file of files) {
      for (const spec of relativeImports(readFileSync(file, "utf8"))) {
        const target = relative(ROOT, resolve(dirname(file), spec));
        if (!target.startsWith("shared/")) offending.push(`${relative(ROOT, file)} -> ${target}`);
      }
    }
    expect(offending).toEqual([]);
  });
});
