import { describe, expect, it } from "vitest";
import { makeEvent, parseEvent } from "./envelope.ts";
import { urlPolicyProblems, webUrlProblem } from "./urls.ts";

describe("webUrlProblem", () => {
  it("takes https:, and http: only when allowed", () => {
    expect(webUrlProblem("https://cdn.example/a.m3u8")).toBeNull();
    expect(webUrlProblem("http://127.0.0.1:8000/media/a.m3u8")).toBeNull();
    expect(webUrlProblem("http://cdn.example/a.m3u8", { allowHttp: false })).toMatch(/must use https:/);
  });

  it("refuses every other scheme, relative paths and oversized links", () => {
    for (const bad of ["javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,x", "file:///etc/passwd", "vbscript:x", "/relative", "//cdn.example/x", ""]) {
      expect(webUrlProblem(bad), bad).not.toBeNull();
    }
    expect(webUrlProblem(`https://cdn.example/${"x".repeat(2048)}`)).toMatch(/longer than 2048/);
  });
});

describe("event schemas refuse non-web links on every side", () => {
  const base = { source: "media-node/n1", subject: "s" };
  it("playbackUrl, vodUrl, posterUrl and a notification's url", () => {
    const live = makeEvent("stream.live", { streamId: "s1", nodeId: "n", playbackUrl: "https://cdn.example/x.m3u8", renditions: [] }, base);
    const note = makeEvent("notification.requested", { notificationId: "n1", userId: "u1", title: "t", url: "https://app.example/x" }, base);
    const ready = makeEvent("media.ready", { mediaId: "m", playbackUrl: "https://cdn.example/m.m3u8", durationS: 1 }, base);
    const ended = makeEvent("stream.ended", { streamId: "s1", nodeId: "n", durationS: 1, reason: "publisher-left" }, base);
    const cases: [object, string][] = [
      [live, "playbackUrl"],
      [note, "url"],
      [ready, "posterUrl"],
      [ended, "vodUrl"],
    ];
    for (const [event, field] of cases) {
      const bad = { ...event, data: { ...(event as { data: object }).data, [field]: "javascript:alert(1)" } };
      const parsed = parseEvent(bad);
      expect(parsed.ok, field).toBe(false);
      if (!parsed.ok) expect(parsed.error).toContain(field);
    }
    expect(() => makeEvent("notification.requested", { notificationId: "n1", userId: "u1", title: "t", url: "javascript:alert(1)" }, base)).toThrow();
  });

  it("the policy names each refused link field", () => {
    expect(urlPolicyProblems({ playbackUrl: "http://a.example/x", vodUrl: "https://a.example/y", title: "http://not-a-link-field" }, { allowHttp: false })).toEqual([
      "playbackUrl: must use https: (http: is allowed only where the settings say so)",
    ]);
  });
});
