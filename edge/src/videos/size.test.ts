import { describe, expect, it } from "vitest";
import { maxUploadSize, sizeRefusal } from "./routes.ts";

const MiB = 1024 * 1024;

describe("upload size at creation", () => {
  const s = { videoMaxUploadBytes: 4096 * MiB, videoPartBytes: 10 * MiB };

  it("takes anything from one byte to the limit", () => {
    expect(sizeRefusal(1, s)).toBeUndefined();
    expect(sizeRefusal(4096 * MiB, s)).toBeUndefined();
  });

  it("refuses an empty file (400) and one over the limit (413)", () => {
    expect(sizeRefusal(0, s)).toMatchObject({ status: 400, code: "upload_empty" });
    expect(sizeRefusal(4096 * MiB + 1, s)).toMatchObject({ status: 413, code: "upload_too_large" });
  });

  it("refuses what 10,000 R2 parts cannot hold, even under a higher limit, and advertises that size", () => {
    const big = { videoMaxUploadBytes: 200 * 1024 * MiB, videoPartBytes: 5 * MiB };
    expect(maxUploadSize(big)).toBe(50_000 * MiB);
    expect(sizeRefusal(50_000 * MiB, big)).toBeUndefined();
    expect(sizeRefusal(50_000 * MiB + 1, big)).toMatchObject({ status: 413, message: expect.stringMatching(/10000 parts/) });
    expect(maxUploadSize(s)).toBe(4096 * MiB);
  });
});
