// Bundles the pages' scripts with esbuild into .build/web (git-ignored; wrangler `[assets]` serves it), and
// copies the HTML and CSS beside them. npm start, npm test and the test configs run it before wrangler starts.
// One ESM bundle per page plus shared chunks (the client library, hls.js loaded only when a page plays
// through it), minified. `node web/build.ts` builds once; buildWeb() is the same from code.
import { cp, mkdir, rename, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

export const WEB_ROOT = resolve(import.meta.dirname);
export const WEB_OUT = resolve(import.meta.dirname, "../.build/web");
export const PAGES = ["watch", "studio", "upload", "call"] as const;

export async function buildWeb(outdir: string = WEB_OUT): Promise<{ outdir: string; files: string[] }> {
  // esbuild comes with wrangler; resolved from the project's node_modules.
  const esbuild = await import("esbuild");
  // Built beside the target and swapped in with renames, so a wrangler dev already serving the folder never
  // sees it half-written.
  const target = outdir;
  outdir = `${target}.tmp-${process.pid}-${Date.now()}`;
  await mkdir(join(outdir, "assets"), { recursive: true });
  const result = await esbuild.build({
    entryPoints: PAGES.map((p) => join(WEB_ROOT, "src", `${p}.ts`)),
    outdir: join(outdir, "assets"),
    bundle: true,
    splitting: true,
    format: "esm",
    minify: true,
    target: ["es2022", "chrome110", "safari16", "firefox115"],
    chunkNames: "chunk-[hash]",
    legalComments: "none",
    metafile: true,
    logLevel: "warning",
    // tus-js-client's browser build; nothing of Node's is bundled.
    platform: "browser",
    mainFields: ["browser", "module", "main"],
  });
  for (const page of PAGES) await cp(join(WEB_ROOT, "pages", `${page}.html`), join(outdir, `${page}.html`));
  await cp(join(WEB_ROOT, "pages", "styles.css"), join(outdir, "assets", "styles.css"));
  const old = `${target}.old-${process.pid}-${Date.now()}`;
  await rename(target, old).catch(() => undefined);
  await rename(outdir, target);
  await rm(old, { recursive: true, force: true });
  return { outdir: target, files: Object.keys(result.metafile.outputs).map((f) => f.replace(outdir, target)) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { outdir, files } = await buildWeb();
  console.log(`[web] built ${files.length} files into ${outdir}`);
}
