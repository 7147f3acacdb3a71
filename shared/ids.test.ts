import { describe, expect, it } from "vitest";
import { newEventId, newId, ulid } from "./ids.ts";

describe("ids", () => {
  it("makes ULIDs that sort by time", () => {
    const a = ulid(1_000);
    const b = ulid(2_000);
    expect(a).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(a < b).toBe(true);
  });

  it("does not repeat", () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => newEventId()));
    expect(ids.size).toBe(10_000);
    expect(newId("str")).toMatch(/^str_/);
  });
});
