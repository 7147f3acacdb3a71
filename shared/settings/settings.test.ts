import { describe, expect, it } from "vitest";
import { bool, checkSettings, int, list, num, oneOf, readSettings, secret, secrets, SettingsError, settingsTable, text, url } from "./settings.ts";
import { readSection, writeSection } from "./readme-sections.ts";

const spec = {
  port: int("T_PORT", 8000, "listener port", { min: 1, max: 65535 }),
  ratio: num("T_RATIO", 0.5, "a fraction", { min: 0, max: 1 }),
  on: bool("T_ON", false, "a switch"),
  mode: oneOf("T_MODE", "a", ["a", "b"] as const, "a mode"),
  names: list("T_NAMES", ["x"], "names"),
  url: url("T_URL", "https://example.com", "where", { protocols: ["https:"] }),
  key: secret("T_SECRET", "a credential"),
  keys: secrets("T_KEYS", "rotating credentials", { optional: true }),
  label: text("T_LABEL", undefined, "optional label", { optional: true }),
};

describe("settings", () => {
  it("applies defaults and parses every type", () => {
    const v = readSettings(spec, { T_SECRET: "0123456789abcdef", T_PORT: "81", T_ON: "yes", T_NAMES: "a, b", T_RATIO: "0.25" });
    expect(v).toEqual({ port: 81, ratio: 0.25, on: true, mode: "a", names: ["a", "b"], url: "https://example.com", key: "0123456789abcdef", keys: undefined, label: undefined });
  });

  it("lists every problem at once and never echoes a secret", () => {
    const r = checkSettings(spec, { T_PORT: "80.5", T_RATIO: "2", T_ON: "maybe", T_MODE: "c", T_URL: "javascript:alert(1)", T_SECRET: "tooshort123" });
    expect(r.values).toBeUndefined();
    expect(r.problems).toHaveLength(6);
    expect(r.problems.join("\n")).not.toContain("tooshort123");
    expect(r.problems.join("\n")).toContain("T_SECRET=<redacted, 11 characters>");
    expect(() => readSettings(spec, {})).toThrow(SettingsError);
    expect(() => readSettings(spec, {})).toThrow(/T_SECRET is required/);
  });

  it("integers are integers: 1.5 and 1e3 are refused, not rounded or read as 1000", () => {
    expect(checkSettings({ n: int("N", 1, "n") }, { N: "1.5" }).problems).toHaveLength(1);
    expect(checkSettings({ n: int("N", 1, "n") }, { N: "1e3" }).problems).toHaveLength(1);
  });

  it("renders a README table and swaps it into a marked section", () => {
    const table = settingsTable({ port: spec.port, key: spec.key });
    expect(table).toContain("| `T_PORT` | `8000` | listener port |");
    expect(table).toContain("| `T_SECRET` | **required** | a credential |");
    const readme = "intro\n<!-- settings:x -->\nold\n<!-- /settings:x -->\nend";
    const next = writeSection(readme, "x", table);
    expect(readSection(next, "x")).toBe(table);
    expect(next.endsWith("end")).toBe(true);
  });
});
