// The container file cannot be built on this machine (no Docker daemon, no QEMU for arm64; see deploy/README.md
// "Container"), so what a build would rely on is checked here instead: every file it copies exists, its command is
// the media node's entry point, the Node it installs is the lockfile's, and the runtime dependencies it installs
// with --omit=dev are every package the shipped code imports.

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/edge.ts";

const text = readFileSync(join(ROOT, "deploy/container/Containerfile"), "utf8");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };

describe("deploy/container/Containerfile", () => {
  it("copies only what exists, and runs the media node", () => {
    const copies = [...text.matchAll(/^COPY (.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(copies.length).toBeGreaterThan(0);
    for (const f of copies) expect(existsSync(join(ROOT, f)), f).toBe(true);
    expect(text).toMatch(/^CMD \["node", "media-node\/src\/main\.ts"\]$/m);
    expect(existsSync(join(ROOT, "media-node/src/main.ts"))).toBe(true);
    expect(text).toMatch(/^FROM debian:bookworm-slim$/m);
    expect(text).toMatch(/^EXPOSE 1935$/m);
  });

  it("installs the Node of the lockfile (the `node` package picks the binary for the image's architecture)", () => {
    const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { version: string }> };
    expect(lock.packages["node_modules/node"]!.version).toMatch(/^22\./);
    expect(text).toContain(`require('./package-lock.json').packages['node_modules/node'].version`);
  });

  it("needs nothing from devDependencies at run time: every package the media node and bridges import is a dependency", () => {
    const files = execFileSync("git", ["ls-files", "media-node/src", "shared"], { cwd: ROOT }).toString().split("\n").filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"));
    const imported = new Set<string>();
    for (const f of files) {
      for (const m of readFileSync(join(ROOT, f), "utf8").matchAll(/^\s*(?:import|export)[^"']*from\s+["']([^"'./][^"']*)["']/gm)) {
        const spec = m[1]!;
        if (spec.startsWith("node:")) continue;
        imported.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!);
      }
    }
    const missing = [...imported].filter((p) => !(p in pkg.dependencies));
    expect(missing).toEqual([]);
  });
});
