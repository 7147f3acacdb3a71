// The README's tables of the streams/playback and stream-key settings are the declarations, rendered.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { streamsSettingsSpec, streamsSettings } from "../../edge/src/streams/settings.ts";
import { streamKeySettingsSpec, readStreamKeySettings } from "../../media-node/src/streams/settings.ts";
import { readSection } from "../../shared/settings/readme-sections.ts";
import { settingsTable } from "../../shared/settings/settings.ts";
import { ROOT } from "../helpers/edge.ts";

describe("streams settings", () => {
  it("are listed in the README exactly as declared", async () => {
    const readme = await readFile(join(ROOT, "README.md"), "utf8");
    expect(readSection(readme, "edge-streams")).toBe(settingsTable(streamsSettingsSpec));
    expect(readSection(readme, "media-node-stream-keys")).toBe(settingsTable(streamKeySettingsSpec));
  });

  it("refuse bad values, every problem at once, and never echo a signing key", () => {
    const secretValue = "k1:short";
    let message = "";
    try {
      streamsSettings({ PLAYBACK_SIGNING_KEYS: secretValue, PLAYBACK_ORIGIN_URL: "file:///etc/passwd", PLAYBACK_TOKEN_MAX_TTL_S: "999999" });
    } catch (error) {
      message = (error as Error).message;
    }
    for (const name of ["PLAYBACK_SIGNING_KEYS", "PLAYBACK_ORIGIN_URL", "PLAYBACK_TOKEN_MAX_TTL_S"]) expect(message).toContain(name);
    expect(message).not.toContain(secretValue);
    expect(() => streamsSettings({ PLAYBACK_SIGNING_KEYS: "nokid-0123456789abcdef0123456789abcdef" })).toThrow(/kid/);
    expect(() => streamsSettings({ PLAYBACK_SIGNING_KEYS: "a:0123456789abcdef0123456789abcdef a:0123456789abcdef0123456789abcdefX" })).toThrow(/twice/);
    expect(streamsSettings({ PLAYBACK_SIGNING_KEYS: "new:0123456789abcdef0123456789abcdef old:fedcba9876543210fedcba9876543210" }).playbackSigningKeys!.map((k) => k.kid)).toEqual(["new", "old"]);
    expect(() => readStreamKeySettings({ STREAM_KEYS_EDGE_URL: "ftp://edge", STREAM_KEYS_CHECK_INTERVAL_MS: "5" })).toThrow(/STREAM_KEYS_EDGE_URL[\s\S]*STREAM_KEYS_CHECK_INTERVAL_MS/);
  });
});
