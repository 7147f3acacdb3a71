import { describe, expect, it } from "vitest";
import { classifyStatus } from "./deliver.ts";

describe("classifyStatus", () => {
  it("forgets an event only on 2xx, dead-letters permanent 4xx, retries the rest", () => {
    expect([200, 201, 202, 204].map(classifyStatus)).toEqual(["delivered", "delivered", "delivered", "delivered"]);
    expect([400, 404, 409, 413, 415, 422].map(classifyStatus)).toEqual(Array(6).fill("dead"));
    // 401/403: a secret or clock mismatch between edge and bridge; the events wait until it is fixed.
    expect([401, 403, 408, 425, 429, 500, 502, 503, 504, 302].map(classifyStatus)).toEqual(Array(10).fill("retry"));
  });
});
