import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { newRoom, tokenFor, upgrade } from "../../test/clients.ts";
import { allowedOrigins } from "./cors.ts";

describe("CORS for browser-facing HTTP routes", () => {
  it("reads CORS_ORIGINS", () => {
    expect(allowedOrigins(undefined)).toBe("*");
    expect(allowedOrigins("*")).toBe("*");
    expect(allowedOrigins("https://a.example, https://b.example")).toEqual(["https://a.example", "https://b.example"]);
  });

  it("answers a preflight for room history and the inbox", async () => {
    for (const path of [`/parties/room/${newRoom()}/history`, "/inbox", "/inbox/read"]) {
      const res = await exports.default.fetch(`http://edge${path}`, {
        method: "OPTIONS",
        headers: { origin: "https://app.example", "access-control-request-method": "GET", "access-control-request-headers": "authorization" },
      });
      expect(res.status, path).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe("*");
      expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
    }
  });

  it("lets a browser read history and inbox answers, including refusals", async () => {
    const token = await tokenFor("alice");
    const ok = await exports.default.fetch(`http://edge/parties/room/${newRoom()}/history`, { headers: { origin: "https://app.example", authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe("*");
    const refused = await exports.default.fetch("http://edge/inbox", { headers: { origin: "https://app.example" } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("leaves WebSocket upgrades untouched", async () => {
    const res = await upgrade(`/parties/room/${newRoom()}`, { token: await tokenFor("alice"), headers: { origin: "https://app.example" } });
    expect(res.status).toBe(101);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    res.webSocket!.accept();
    res.webSocket!.close(1000, "done");
  });
});
