import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";

// The page routes answer with the built pages (edge/vitest.config.ts builds them first) under a strict CSP.
describe("pages", () => {
  // The first request of a fresh workerd starts the Worker and its asset service (seconds on a loaded machine);
  // that start belongs to no single route, so it happens here with its own bound and the tests time the routes.
  beforeAll(async () => {
    await (await env.ASSETS!.fetch("http://edge/watch.html")).arrayBuffer();
    await (await exports.default.fetch("http://edge/healthz")).arrayBuffer();
  }, 60_000);

  for (const [path, script] of [
    ["/watch/some-stream", "/assets/watch.js"],
    ["/studio", "/assets/studio.js"],
    ["/upload", "/assets/upload.js"],
  ] as const) {
    it(`${path} serves its page with a Content-Security-Policy`, async () => {
      const res = await exports.default.fetch(`http://edge${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/html");
      expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
      expect(await res.text()).toContain(`src="${script}"`);
    });
  }

  it("has the bundled scripts among its assets (served before the Worker runs)", async () => {
    const res = await env.ASSETS!.fetch("http://edge/assets/watch.js");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("javascript");
  });

  it("unknown paths still get the JSON 404", async () => {
    const res = await exports.default.fetch("http://edge/nope");
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: "not_found" } });
  });
});
