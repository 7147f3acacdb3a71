// package-lock.json lists, for every package, each optional dependency it declares, for every platform, as npm
// itself writes it on a fresh install. A lockfile written where some platforms' optional packages were skipped
// gets rewritten by the next `npm install` in a fresh clone, leaving the tree modified.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";

interface LockEntry {
  optionalDependencies?: Record<string, string>;
  dependencies?: Record<string, string>;
}

const ROOT = resolve(import.meta.dirname, "../..");

/** Where Node's resolution finds `name` from the package at `from` (a lockfile key), among the lockfile's keys. */
function resolveInLock(packages: Record<string, unknown>, from: string, name: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = `${dir ? `${dir}/` : ""}node_modules/${name}`;
    if (candidate in packages) return candidate;
    if (!dir) return undefined;
    const up = dir.lastIndexOf("node_modules/");
    dir = up <= 0 ? "" : dir.slice(0, up - 1);
  }
}

/** Declared optional dependencies that have no entry in the lockfile. */
function missingOptionals(lock: { packages: Record<string, LockEntry> }): string[] {
  const missing: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    for (const name of Object.keys(entry.optionalDependencies ?? {})) {
      if (!resolveInLock(lock.packages, path, name)) missing.push(`${path || "(root)"} -> ${name}`);
    }
  }
  return missing;
}

describe("package-lock.json", () => {
  it("has an entry for every optional dependency of every package, whatever the platform", () => {
    const lock = JSON.parse(readFileSync(resolve(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, LockEntry> };
    expect(missingOptionals(lock)).toEqual([]);
  });

  it("the check finds a dropped platform package (nested under another package too)", () => {
    const lock = {
      packages: {
        "": {},
        "node_modules/workerd": { optionalDependencies: { "@cloudflare/workerd-linux-64": "1", "@cloudflare/workerd-darwin-64": "1" } },
        "node_modules/@cloudflare/workerd-linux-64": {},
        "node_modules/wrangler/node_modules/workerd": { optionalDependencies: { "@cloudflare/workerd-linux-64": "2", "@cloudflare/workerd-windows-64": "2" } },
        "node_modules/wrangler/node_modules/@cloudflare/workerd-linux-64": {},
      },
    };
    expect(missingOptionals(lock)).toEqual(["node_modules/workerd -> @cloudflare/workerd-darwin-64", "node_modules/wrangler/node_modules/workerd -> @cloudflare/workerd-windows-64"]);
  });
});
