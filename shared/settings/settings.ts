// Declarative settings, one style for every process (the Worker and the Node processes alike).
//
// A process declares each of its settings once, with the variable that sets it, its type, default, bounds and
// one line of meaning. `readSettings` checks every one of them and reports every problem at once, so a
// misconfigured process refuses to start (or, at the edge, refuses to serve) instead of failing on first use.
// `settingsTable` renders the same declarations as the README's configuration tables, and a test keeps the
// README equal to it. Web-standard only: this runs in workerd and in Node.

/** One setting. `default: undefined` with `optional: false` means required. */
export interface Setting<T> {
  /** the environment variable (or Worker var / secret) that sets it */
  readonly env: string;
  /** one line: what it means */
  readonly doc: string;
  /** used when the variable is unset or empty */
  readonly default: T | undefined;
  /** how the default reads in docs when it is computed (e.g. "hostname") */
  readonly defaultText?: string;
  /** unset is fine and reads as undefined */
  readonly optional: boolean;
  /** a credential: its value never appears in an error message */
  readonly secret: boolean;
  /** turns the raw string into the value, or throws an Error whose message says what is wrong */
  parse(raw: string): T;
}

export type SettingsSpec = Record<string, Setting<unknown>>;
export type SettingsOf<S extends SettingsSpec> = { [K in keyof S]: S[K] extends Setting<infer T> ? T : never };
export type RawEnv = Record<string, unknown>;

/** A bad or missing setting; `problems` lists every one found, so one start shows them all. */
export class SettingsError extends Error {
  override name = "SettingsError";
  readonly problems: string[];
  constructor(problems: string[], what = "configuration") {
    super(`invalid ${what}:\n  - ${problems.join("\n  - ")}`);
    this.problems = problems;
  }
}

/** How a rejected value appears in an error: only its length for credentials, else a bounded quoted prefix with URL user:password masked. */
export function shownValue(setting: Pick<Setting<unknown>, "env" | "secret">, raw: string): string {
  if (setting.secret || /SECRET|TOKEN|PASSWORD|PRIVATE|(^|_)KEY$/i.test(setting.env)) return `<redacted, ${raw.length} characters>`;
  const masked = raw.replace(/(\/\/)[^/@\s]*@/g, "$1…@");
  return JSON.stringify(masked.length > 80 ? masked.slice(0, 80) + "…" : masked);
}

/** Checks every setting of `spec` against `env`; returns the values, or every problem (never both). */
export function checkSettings<S extends SettingsSpec>(spec: S, env: RawEnv): { values: SettingsOf<S>; problems: [] } | { values: undefined; problems: string[] } {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, setting] of Object.entries(spec)) {
    const value = env[setting.env];
    const raw = typeof value === "string" ? value.trim() : value === undefined || value === null ? "" : String(value);
    if (raw === "") {
      if (setting.default !== undefined || setting.optional) out[key] = setting.default;
      else problems.push(`${setting.env} is required: ${setting.doc}`);
      continue;
    }
    try {
      out[key] = setting.parse(raw);
    } catch (error) {
      problems.push(`${setting.env}=${shownValue(setting, raw)}: ${(error as Error).message}`);
    }
  }
  return problems.length ? { values: undefined, problems } : { values: out as SettingsOf<S>, problems: [] };
}

/** Reads and validates every setting; throws one SettingsError listing every problem. */
export function readSettings<S extends SettingsSpec>(spec: S, env: RawEnv, what?: string): SettingsOf<S> {
  const result = checkSettings(spec, env);
  if (result.values === undefined) throw new SettingsError(result.problems, what);
  return result.values;
}

// ---- builders --------------------------------------------------------------------------------------------

interface Common {
  /** how the default reads in the docs when it is computed at start */
  defaultText?: string;
}

function make<T>(env: string, def: T | undefined, doc: string, parse: (raw: string) => T, extra: Partial<Pick<Setting<T>, "optional" | "secret" | "defaultText">> = {}): Setting<T> {
  return { env, doc, default: def, parse, optional: extra.optional ?? false, secret: extra.secret ?? false, defaultText: extra.defaultText };
}

function bounded(n: number, min?: number, max?: number): number {
  if (min !== undefined && n < min) throw new Error(`must be at least ${min}`);
  if (max !== undefined && n > max) throw new Error(`must be at most ${max}`);
  return n;
}

/** An integer within [min, max]. */
export function int(env: string, def: number | undefined, doc: string, range: { min?: number; max?: number } & Common = {}): Setting<number> {
  return make(env, def, doc, (raw) => {
    if (!/^-?\d+$/.test(raw)) throw new Error("must be a whole number");
    return bounded(Number(raw), range.min, range.max);
  }, { defaultText: range.defaultText });
}

/** A decimal number within [min, max]. */
export function num(env: string, def: number | undefined, doc: string, range: { min?: number; max?: number } & Common = {}): Setting<number> {
  return make(env, def, doc, (raw) => {
    const n = Number(raw);
    if (!/^-?(\d+\.?\d*|\.\d+)$/.test(raw) || !Number.isFinite(n)) throw new Error("must be a number");
    return bounded(n, range.min, range.max);
  }, { defaultText: range.defaultText });
}

/** A TCP port (0 picks a free one). */
export function port(env: string, def: number, doc: string): Setting<number> {
  return int(env, def, doc, { min: 0, max: 65535 });
}

const TRUE = new Set(["1", "true", "yes", "on"]);
const FALSE = new Set(["0", "false", "no", "off"]);

/** true/false (also 1/0, yes/no, on/off). */
export function bool(env: string, def: boolean, doc: string): Setting<boolean> {
  return make(env, def, doc, (raw) => {
    const v = raw.toLowerCase();
    if (TRUE.has(v)) return true;
    if (FALSE.has(v)) return false;
    throw new Error("must be true or false");
  });
}

/** Free text, optionally matching a pattern. */
export function text(env: string, def: string | undefined, doc: string, opts: { pattern?: RegExp; optional?: boolean } & Common = {}): Setting<string> {
  return make(env, def, doc, (raw) => {
    if (opts.pattern && !opts.pattern.test(raw)) throw new Error(`must match ${opts.pattern}`);
    return raw;
  }, { optional: opts.optional, defaultText: opts.defaultText });
}

/** One of a fixed set of words. */
export function oneOf<const T extends string>(env: string, def: T | undefined, values: readonly T[], doc: string): Setting<T> {
  return make(env, def, doc, (raw) => {
    if (!(values as readonly string[]).includes(raw)) throw new Error(`must be one of ${values.join(", ")}`);
    return raw as T;
  });
}

/** A comma-separated list; each item is checked by `item` (which throws on a bad one). */
export function list<T = string>(env: string, def: T[] | undefined, doc: string, item: (s: string) => T = (s) => s as T, opts: Common & { min?: number } = {}): Setting<T[]> {
  return make(env, def, doc, (raw) => {
    const items = raw.split(",").map((s) => s.trim()).filter(Boolean);
    if (items.length < (opts.min ?? 1)) throw new Error(`needs at least ${opts.min ?? 1} item(s)`);
    return items.map((s) => {
      try {
        return item(s);
      } catch (error) {
        throw new Error(`${JSON.stringify(s)}: ${(error as Error).message}`);
      }
    });
  }, { defaultText: opts.defaultText });
}

/** A URL (or a comma-separated list of them when `many`) whose protocol is one of `protocols`. */
export function url(env: string, def: string | undefined, doc: string, opts: { protocols: string[]; many?: boolean; optional?: boolean } & Common): Setting<string> {
  return make(env, def, doc, (raw) => {
    for (const one of opts.many ? raw.split(",") : [raw]) {
      let u: URL;
      try {
        u = new URL(one.trim());
      } catch {
        throw new Error("not a URL");
      }
      if (!opts.protocols.includes(u.protocol)) throw new Error(`protocol must be one of ${opts.protocols.join(", ")}`);
    }
    return raw;
  }, { optional: opts.optional, defaultText: opts.defaultText });
}

/** A credential: no default in code, a minimum length, never shown in errors. */
export function secret(env: string, doc: string, opts: { minLength?: number; optional?: boolean } = {}): Setting<string> {
  const min = opts.minLength ?? 16;
  return make(env, undefined, doc, (raw) => {
    if (raw.length < min) throw new Error(`must be at least ${min} characters`);
    return raw;
  }, { secret: true, optional: opts.optional });
}

/** Several credentials (current first, then previous ones, comma or space separated) so they rotate without downtime. */
export function secrets(env: string, doc: string, opts: { minLength?: number; optional?: boolean } = {}): Setting<string[]> {
  const min = opts.minLength ?? 16;
  return make(env, undefined, doc, (raw) => {
    const items = raw.split(/[\s,]+/).filter(Boolean);
    if (items.length === 0) throw new Error("no secret given");
    if (items.some((s) => s.length < min)) throw new Error(`each secret must be at least ${min} characters`);
    return items;
  }, { secret: true, optional: opts.optional });
}

// ---- docs ------------------------------------------------------------------------------------------------

function defaultCell(s: Setting<unknown>): string {
  if (s.defaultText !== undefined) return s.defaultText;
  if (s.default === undefined) return s.secret || !s.optional ? (s.optional ? "unset" : "**required**") : "unset";
  const v = s.default;
  if (Array.isArray(v)) return `\`${v.join(",")}\``;
  return `\`${String(v)}\``;
}

/** The README table for a spec: variable, default, meaning; one row per setting, in declaration order. */
export function settingsTable(spec: SettingsSpec): string {
  const rows = Object.values(spec).map((s) => `| \`${s.env}\` | ${defaultCell(s)} | ${s.doc.replace(/\|/g, "\\|")} |`);
  return ["| Variable | Default | Meaning |", "| --- | --- | --- |", ...rows].join("\n");
}

/** Every variable a spec reads. */
export function settingNames(spec: SettingsSpec): string[] {
  return Object.values(spec).map((s) => s.env);
}
