// The Streams API's settings live in the two single settings modules (edge/src/settings.ts and the media node's
// stream-keys group); the README tables are checked with every other section in test/docs/readme-settings.test.ts.
// Here: bad values are refused, every problem at once, and a signing key never appears in an error.
import { describe, expect, it } from "vitest";
import { checkEdgeSettings, edgeSettings } from "../../edge/src/settings.ts";
import { readMediaNodeSettings } from "../../media-node/src/settings/index.ts";
import { SettingsError } from "../../shared/settings/settings.ts";

const nodeSecrets = { NATS_USER: "media-node", NATS_PASSWORD: "a-password-of-16-chars", PUBLISH_TOKEN_SECRET: "p".repeat(24) };

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof SettingsError) return error.problems;
    throw error;
  }
  return [];
}

describe("streams settings at the edge", () => {
  it("refuse bad values, every problem at once, and never echo a signing key", () => {
    const secretValue = "k1:short";
    const result = checkEdgeSettings({ PLAYBACK_SIGNING_KEYS: secretValue, PLAYBACK_ORIGIN_URL: "file:///etc/passwd", PLAYBACK_TOKEN_MAX_TTL_S: "999999" });
    expect(result.ok).toBe(false);
    const message = result.ok ? "" : result.problems.join("\n");
    for (const name of ["PLAYBACK_SIGNING_KEYS", "PLAYBACK_ORIGIN_URL", "PLAYBACK_TOKEN_MAX_TTL_S"]) expect(message).toContain(name);
    expect(message).not.toContain(secretValue);
    expect(() => edgeSettings({ PLAYBACK_SIGNING_KEYS: "nokid-0123456789abcdef0123456789abcdef" })).toThrow(/kid/);
    expect(() => edgeSettings({ PLAYBACK_SIGNING_KEYS: "a:0123456789abcdef0123456789abcdef a:0123456789abcdef0123456789abcdefX" })).toThrow(/twice/);
    expect(edgeSettings({ PLAYBACK_SIGNING_KEYS: "new:0123456789abcdef0123456789abcdef old:fedcba9876543210fedcba9876543210" }).playbackSigningKeys!.map((k) => k.kid)).toEqual(["new", "old"]);
  });

  it("refuse a default viewer-token lifetime above the longest one allowed", () => {
    expect(checkEdgeSettings({ PLAYBACK_TOKEN_DEFAULT_TTL_S: "7200", PLAYBACK_TOKEN_MAX_TTL_S: "3600" })).toEqual({
      ok: false,
      problems: ["PLAYBACK_TOKEN_DEFAULT_TTL_S (7200) is above PLAYBACK_TOKEN_MAX_TTL_S (3600)"],
    });
    expect(checkEdgeSettings({ PLAYBACK_TOKEN_DEFAULT_TTL_S: "3600", PLAYBACK_TOKEN_MAX_TTL_S: "3600" }).ok).toBe(true);
  });
});

describe("stream-key check settings of the media node", () => {
  it("are off by default and read with the node's other settings", () => {
    expect(readMediaNodeSettings(nodeSecrets).streamKeys).toEqual({ edgeUrl: undefined, internalToken: undefined, intervalMs: 2000, timeoutMs: 1500 });
    const on = readMediaNodeSettings({ ...nodeSecrets, STREAM_KEYS_EDGE_URL: "http://127.0.0.1:8787", INTERNAL_API_TOKEN: "i".repeat(32), STREAM_KEYS_CHECK_INTERVAL_MS: "500" });
    expect(on.streamKeys).toMatchObject({ edgeUrl: "http://127.0.0.1:8787", internalToken: "i".repeat(32), intervalMs: 500 });
  });

  it("refuse bad values together with the node's other problems", () => {
    const problems = problemsOf(() => readMediaNodeSettings({ ...nodeSecrets, STREAM_KEYS_EDGE_URL: "ftp://edge", STREAM_KEYS_CHECK_INTERVAL_MS: "5", MEDIA_SEGMENT_S: "0" }));
    expect(problems.join("\n")).toMatch(/STREAM_KEYS_EDGE_URL/);
    expect(problems.join("\n")).toMatch(/STREAM_KEYS_CHECK_INTERVAL_MS/);
    expect(problems.join("\n")).toMatch(/MEDIA_SEGMENT_S/);
  });

  it("refuse an edge URL without the internal token to ask it with", () => {
    expect(problemsOf(() => readMediaNodeSettings({ ...nodeSecrets, STREAM_KEYS_EDGE_URL: "http://127.0.0.1:8787" }))).toEqual([
      "STREAM_KEYS_EDGE_URL is set but INTERNAL_API_TOKEN is not: the node cannot ask the edge about stream keys",
    ]);
  });
});
