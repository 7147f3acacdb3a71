// Where the Node processes' settings come from: the process environment, and, only when the local start script
// asks for it with PULSECAST_DEV=1, the repository's git-ignored .dev.vars (random secrets written by `npm start`,
// the same file wrangler dev reads). Without that flag .dev.vars is never read, so a production host that
// happens to have one in its checkout still takes every setting, secrets included, from its own environment.
//
// A process started with PULSECAST_DEV=1 refuses to listen beyond loopback: development secrets are for a
// developer's own machine, never for a listener others can reach.

import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { bool } from "../../../shared/settings/settings.ts";

export type SettingsEnv = Record<string, string | undefined>;

/** The repository's .dev.vars (written by deploy/local/start.ts). */
export const DEV_VARS_PATH = resolve(import.meta.dirname, "../../../.dev.vars");

/** The flag the local start script sets; declared like every other setting so the README lists it. */
export const devSettings = {
  dev: bool("PULSECAST_DEV", false, "local development run: also read secrets from the repository's .dev.vars, and refuse any listener beyond loopback (set by `npm start`; never in production)"),
} as const;

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

/** Whether `env` asks for a local development run (PULSECAST_DEV=1/true/yes/on). */
export function isDevRun(env: SettingsEnv): boolean {
  return ["1", "true", "yes", "on"].includes((env.PULSECAST_DEV ?? "").trim().toLowerCase());
}

/**
 * The settings a process reads: `env` (default process.env), with .dev.vars underneath only for a development run.
 * Values set in the environment always win over .dev.vars.
 */
export function settingsEnv(env: SettingsEnv = process.env, devVarsPath: string = DEV_VARS_PATH): SettingsEnv {
  return isDevRun(env) ? { ...readDevVars(devVarsPath), ...env } : { ...env };
}

/** 127.0.0.0/8, ::1 and localhost: the only addresses a development run may listen on. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** The problems of a development run whose listeners reach beyond loopback, one per listener (empty otherwise). */
export function devListenerProblems(dev: boolean, listeners: Record<string, string>): string[] {
  if (!dev) return [];
  return Object.entries(listeners)
    .filter(([, host]) => !isLoopbackHost(host))
    .map(([name, host]) => `${name}=${JSON.stringify(host)} is beyond loopback, but PULSECAST_DEV=1 (development secrets) is set: a development run listens on 127.0.0.1 only; unset PULSECAST_DEV and set real secrets to listen there`);
}
