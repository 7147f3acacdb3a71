import { describe, expect, it } from "vitest";
import { refusalOf, resolveToken, subprotocols, tokenExpiry } from "../../shared/client/token.ts";
import { videoIdOfUploadUrl } from "../../shared/client/upload.ts";

// The client library's small pure parts, including the bad inputs they meet.
describe("client token helpers", () => {
  const jwt = (payload: unknown) => `e30.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.sig`;

  it("reads exp from a JWT without verifying it, and nothing from what is not one", () => {
    expect(tokenExpiry(jwt({ sub: "a", exp: 1234 }))).toBe(1234);
    expect(tokenExpiry(jwt({ sub: "a" }))).toBeUndefined();
    expect(tokenExpiry("not-a-jwt")).toBeUndefined();
    expect(tokenExpiry("a.!!!.b")).toBeUndefined();
  });

  it("offers the app protocol and the token as subprotocols", () => {
    expect(subprotocols("abc.def.ghi")).toEqual(["pulsecast.v1", "bearer.abc.def.ghi"]);
  });

  it("refuses an empty token from a callback in words", async () => {
    await expect(resolveToken(async () => "", "connect")).rejects.toThrow("the token callback returned no token");
    expect(await resolveToken((reason) => `t-${reason}`, "refused")).toBe("t-refused");
  });

  it("reads the edge's error body, and falls back to the status for anything else", async () => {
    const edge = new Response(JSON.stringify({ error: { code: "token_expired", message: "token has expired" } }), { status: 401 });
    expect(await refusalOf(edge)).toEqual({ status: 401, code: "token_expired", message: "token has expired" });
    const html = new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway" });
    expect(await refusalOf(html)).toEqual({ status: 502, code: "http_502", message: "Bad Gateway" });
  });

  it("takes the video id from a tus upload URL, and refuses one without", () => {
    expect(videoIdOfUploadUrl("https://edge.example/uploads/vid_123")).toBe("vid_123");
    expect(videoIdOfUploadUrl("/uploads/a%7Cb")).toBe("a|b");
    expect(() => videoIdOfUploadUrl("https://edge.example/")).toThrow("upload URL without an id");
  });
});
