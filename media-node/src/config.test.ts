import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.ts";

describe("media node config", () => {
  it("has working local defaults for everything but the secret", () => {
    const c = loadConfig({ PUBLISH_TOKEN_SECRET: "s".repeat(20) });
    expect(c).toMatchObject({ rtmpHost: "127.0.0.1", rtmpPort: 1935, httpPort: 8000, opsHost: "127.0.0.1", opsPort: 8001, segmentS: 2, ladder: ["1080p", "720p", "480p", "360p"], passthrough: false, apps: ["live"], record: true });
    expect(c.rtmpsCert).toBeUndefined();
  });

  it("has no default publish-token secret, in production or not", () => {
    expect(() => loadConfig({})).toThrow(ConfigError);
    expect(() => loadConfig({})).toThrow(/PUBLISH_TOKEN_SECRET is required/);
    expect(() => loadConfig({ NODE_ENV: "development" })).toThrow(/PUBLISH_TOKEN_SECRET is required/);
  });

  it("parses every kind of setting from env", () => {
    const c = loadConfig({ MEDIA_RTMP_PORT: "19350", MEDIA_SEGMENT_S: "1", MEDIA_LADDER: "720p, 360p", MEDIA_PASSTHROUGH: "true", MEDIA_RTMP_APPS: "live,studio", PUBLISH_TOKEN_SECRET: "s".repeat(20) });
    expect(c).toMatchObject({ rtmpPort: 19350, segmentS: 1, ladder: ["720p", "360p"], passthrough: true, apps: ["live", "studio"] });
  });

  it("reports every bad setting at once, by env var name", () => {
    let error: unknown;
    try {
      loadConfig({ MEDIA_RTMP_PORT: "99999", MEDIA_SEGMENT_S: "0.5", MEDIA_LADDER: "4k", PUBLISH_TOKEN_SECRET: "short", MEDIA_RTMPS_CERT: "/x.pem" });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    for (const name of ["MEDIA_RTMP_PORT", "MEDIA_SEGMENT_S", "MEDIA_LADDER", "PUBLISH_TOKEN_SECRET", "MEDIA_RTMPS_KEY"]) expect(message).toContain(name);
  });

  it("never repeats a secret's value in the error, only its length", () => {
    const secret = "hunter2-short";
    let error: unknown;
    try {
      loadConfig({ PUBLISH_TOKEN_SECRET: secret, MEDIA_SEGMENT_S: "eleven" });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain(`PUBLISH_TOKEN_SECRET=<redacted, ${secret.length} characters>: must be at least 16 characters`);
    expect(message).not.toContain("hunter2");
    // ordinary settings still show the bad value, which is what makes the message useful
    expect(message).toContain('MEDIA_SEGMENT_S="eleven"');
  });
});
