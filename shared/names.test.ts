import { describe, expect, it } from "vitest";
import { checkRoomId, checkStreamId, checkUserId } from "./names.ts";

describe("names from clients", () => {
  it("accepts ordinary names", () => {
    for (const ok of ["cam1", "A_b-9", "x".repeat(64)]) expect(checkStreamId(ok)).toEqual({ ok: true });
    for (const ok of ["lobby", "show:42", "team.alpha"]) expect(checkRoomId(ok)).toEqual({ ok: true });
    for (const ok of ["user-1", "auth0|abc", "a@b.c"]) expect(checkUserId(ok)).toEqual({ ok: true });
  });

  it.each([
    ["..", "'..'"],
    ["a/../b", "'..'"],
    ["a/b", "path separator"],
    ["a\\b", "path separator"],
    ["a\u0000b", "control characters"],
    ["a\nb", "control characters"],
    ["x".repeat(65), "longer than 64"],
    ["", "empty"],
    ["-leading", "characters outside"],
    ["sp ace", "characters outside"],
    ["%2e%2e", "characters outside"],
  ])("refuses stream id %j (%s)", (name, reason) => {
    const result = checkStreamId(name);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain(reason);
  });

  it("refuses non-strings and path tricks in room and user ids", () => {
    expect(checkStreamId(42).ok).toBe(false);
    expect(checkRoomId("a..b").ok).toBe(false);
    expect(checkRoomId(".hidden").ok).toBe(false);
    expect(checkUserId("../admin").ok).toBe(false);
  });
});
