// Typed settings read from the environment, for the bus and both bridge processes.
//
// Each setting is declared once, next to the code that uses it, with its env var name, its default and what it
// means, so the declaration IS the documentation (MediaMTX style). Everything is checked at start-up and every
// problem is reported at once, so a misconfigured process refuses to start instead of failing on its first event.
//
// Secrets have no default. They come from the environment, or for local development from the repo's
// `.dev.vars` (written with random values by `npm start`), never from the code.

import { ConfigError, type SettingsEnv, settingsEnv, shownValue } from "../settings-env.ts";
import { parseSecrets } from "../../../shared/signing/webhooks.ts";

export interface Setting<T> {
  /** environment variable that sets it */
  env: string;
  /** what it means (shown in error messages) */
  doc: string;
  /** used when the variable is unset or empty; `undefined` means required */
  default: T | undefined;
  parse(raw: string): T;
}

export type SettingsSpec = Record<string, Setting<unknown>>;
export type SettingsOf<S extends SettingsSpec> = { [K in keyof S]: S[K] extends Setting<infer T> ? T : never };

export { ConfigError };

type Env = SettingsEnv;

/**
 * Reads and validates every setting in `spec` from `env` (default: process.env, falling back to .dev.vars for
 * names that are unset). Throws one ConfigError listing every problem.
 */
export function readSettings<S extends SettingsSpec>(spec: S, env: Env = settingsEnv()): SettingsOf<S> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, setting] of Object.entries(spec)) {
    const raw = env[setting.env]?.trim();
    if (raw === undefined || raw === "") {
      if (setting.default === undefined) problems.push(`${setting.env} is required: ${setting.doc}`);
      else out[key] = setting.default;
      continue;
    }
    try {
      out[key] = setting.parse(raw);
    } catch (error) {
      problems.push(`${setting.env}=${shownValue(setting.env, raw)} is invalid: ${(error as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
  return out as SettingsOf<S>;
}

// Setting builders.

export function stringSetting(env: string, def: string | undefined, doc: string, pattern?: RegExp): Setting<string> {
  return {
    env,
    doc,
    default: def,
    parse(raw) {
      if (pattern && !pattern.test(raw)) throw new Error(`must match ${pattern}`);
      return raw;
    },
  };
}

export function intSetting(env: string, def: number | undefined, doc: string, range: { min?: number; max?: number } = {}): Setting<number> {
  return {
    env,
    doc,
    default: def,
    parse(raw) {
      if (!/^-?\d+$/.test(raw)) throw new Error("must be an integer");
      const n = Number(raw);
      if (range.min !== undefined && n < range.min) throw new Error(`must be >= ${range.min}`);
      if (range.max !== undefined && n > range.max) throw new Error(`must be <= ${range.max}`);
      return n;
    },
  };
}

export function urlSetting(env: string, def: string | undefined, doc: string, protocols: string[]): Setting<string> {
  return {
    env,
    doc,
    default: def,
    parse(raw) {
      // Several comma-separated URLs are allowed where the protocol is nats: (a cluster); each is checked.
      for (const one of raw.split(",")) {
        let u: URL;
        try {
          u = new URL(one.trim());
        } catch {
          throw new Error("not a URL");
        }
        if (!protocols.includes(u.protocol)) throw new Error(`protocol must be one of ${protocols.join(", ")}`);
      }
      return raw;
    },
  };
}

/** A secret list (current and previous, comma or space separated) so secrets rotate without downtime. */
export function secretsSetting(env: string, doc: string): Setting<string[]> {
  return {
    env,
    doc,
    default: undefined,
    parse(raw) {
      const list = parseSecrets(raw);
      if (list.length === 0) throw new Error("no secret given");
      if (list.some((s) => s.length < 16)) throw new Error("each secret must be at least 16 characters");
      return list;
    },
  };
}

export function hostSetting(env: string, def: string, doc: string): Setting<string> {
  return stringSetting(env, def, doc, /^[A-Za-z0-9.:\-[\]]+$/);
}

export function portSetting(env: string, def: number, doc: string): Setting<number> {
  return intSetting(env, def, doc, { min: 0, max: 65535 });
}
