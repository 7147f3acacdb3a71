import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../app.ts";
import type { Env } from "../env.ts";
import { verifyJwt } from "../auth/verify.ts";
import { slugUserId } from "./sign-in.ts";

// Dev sign-in exists only with DEV_SIGN_IN on; it mints tokens the Worker itself accepts.
const app = createApp();
const on = { ...env, DEV_SIGN_IN: "true" } as Env;
const post = (body: unknown, e: Env = on) =>
  app.request("/dev/sign-in", { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) }, e);

describe("dev sign-in", () => {
  it("is absent (404) unless DEV_SIGN_IN is on, which the checked-in config keeps off", async () => {
    expect((await app.request("/dev/sign-in", {}, env)).status).toBe(404);
    expect((await post({ name: "Ann" }, env)).status).toBe(404);
    expect((env as Env).DEV_SIGN_IN ?? "false").toBe("false");
    expect((await app.request("/dev/sign-in", {}, on)).status).toBe(200);
  });

  it("mints a token the Worker verifies, with the name, the role and a user id from the name", async () => {
    const res = await post({ name: "Ann Example", role: "moderator" });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { token: string; userId: string; expiresAt: number };
    expect(body.userId).toBe("ann-example");
    const verified = await verifyJwt(on, body.token);
    expect(verified).toMatchObject({ ok: true, user: { userId: "ann-example", role: "moderator", name: "Ann Example" } });
    expect(body.expiresAt).toBeGreaterThan(Date.now() / 1000);
  });

  it("refuses bad input in words", async () => {
    for (const [body, code] of [
      ["not json", "bad_json"],
      [{ name: "" }, "invalid_request"],
      [{ name: "x", role: "admin" }, "invalid_request"],
      [{ name: "x", userId: "bad id with spaces" }, "invalid_request"],
    ] as const) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
    }
  });

  it("answers 503 when there is no JWT_SECRET to sign with", async () => {
    const res = await post({ name: "x" }, { ...on, JWT_SECRET: undefined } as Env);
    expect(res.status).toBe(503);
  });

  it("slugs names into valid user ids", () => {
    expect(slugUserId("  Zoë O'Brien!  ")).toBe("zoe-o-brien");
    expect(slugUserId("!!!")).toBe("user");
  });
});
