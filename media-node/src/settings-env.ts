// Where media node and bridge settings come from: the process environment, over the repo's git-ignored
// .dev.vars for local runs (the same file wrangler dev reads, written by `npm start` with random secrets).
// One reader for every config module, and for deploy/local/start.ts which writes the file.
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";

export type SettingsEnv = Record<string, string | undefined>;

/** The repo's .dev.vars. Only local runs have one; production sets real environment variables. */
export const DEV_VARS_PATH = resolve(import.meta.dirname, "../../.dev.vars");

/** A bad or missing setting; the message lists every problem found, so one start shows them all. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** `KEY="value"` / `KEY=value` lines; anything else (comments, blanks) is skipped. */
export function parseDevVars(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = line.match(/^\s*([A-Z0-9_]+)\s*=\s*"?(.*?)"?\s*$/);
    if (m) vars[m[1]!] = m[2]!;
  }
  return vars;
}

export function readDevVars(path: string = DEV_VARS_PATH): Record<string, string> {
  return existsSync(path) ? parseDevVars(readFileSync(path, "utf8")) : {};
}

/** process.env, falling back to .dev.vars for names that are unset. */
export function settingsEnv(): SettingsEnv {
  return { ...readDevVars(), ...process.env };
}

/** Settings whose value may be a credential: config errors (which end up in logs) never repeat it. */
const SENSITIVE = /SECRET|TOKEN|KEY|PASSWORD/i;

/**
 * How a rejected value appears in a config error: only its length for credentials, otherwise a bounded quoted
 * prefix with any `user:password@` of a URL (e.g. NATS_URL) masked.
 */
export function shownValue(name: string, raw: string): string {
  if (SENSITIVE.test(name)) return `<redacted, ${raw.length} characters>`;
  const masked = raw.replace(/(\/\/)[^/@\s]*@/g, "$1…@");
  return JSON.stringify(masked.length > 80 ? masked.slice(0, 80) + "…" : masked);
}
