import { describe, expect, it } from "vitest";
import { checkTusResumable, discoveryHeaders, encodeUploadMetadata, parseNonNegative, parseUploadMetadata } from "./tus.ts";

describe("tus headers", () => {
  it("Tus-Resumable must be 1.0.0 (412 otherwise)", () => {
    expect(checkTusResumable(new Headers({ "Tus-Resumable": "1.0.0" }))).toBeUndefined();
    expect(checkTusResumable(new Headers())).toMatchObject({ status: 412, code: "tus_version_missing" });
    expect(checkTusResumable(new Headers({ "Tus-Resumable": "0.2.2" }))).toMatchObject({ status: 412, code: "tus_version_unsupported" });
  });

  it("lengths and offsets are plain non-negative integers", () => {
    expect(parseNonNegative("0", "Upload-Offset")).toEqual({ ok: true, value: 0 });
    expect(parseNonNegative(" 123 ", "Upload-Offset")).toEqual({ ok: true, value: 123 });
    for (const bad of ["-1", "1e3", "0x10", "1.5", "", "99999999999999999"]) expect(parseNonNegative(bad, "Upload-Length").ok, bad).toBe(false);
    expect(parseNonNegative(null, "Upload-Length")).toMatchObject({ ok: false, error: { status: 400, code: "tus_header_missing" } });
  });

  it("Upload-Metadata: base64 values, UTF-8, keys alone are empty values", () => {
    const text = encodeUploadMetadata({ filename: "été.mp4", title: "Holiday ☀" });
    expect(parseUploadMetadata(`${text},is_confidential`)).toEqual({ ok: true, metadata: { filename: "été.mp4", title: "Holiday ☀", is_confidential: "" } });
    expect(parseUploadMetadata(null)).toEqual({ ok: true, metadata: {} });
  });

  it.each([
    ["not base64", "filename ***"],
    ["a repeated key", "a YQ==,a Yg=="],
    ["three parts", "a YQ== extra"],
    ["a key with a control character", "a\tb YQ=="],
    ["bytes that are not UTF-8", "name /w=="],
  ])("Upload-Metadata with %s is refused (400)", (_what, value) => {
    expect(parseUploadMetadata(value)).toMatchObject({ ok: false, error: { status: 400, code: "tus_metadata_invalid" } });
  });

  it("discovery lists the version, the extensions and the size limit", () => {
    const h = discoveryHeaders(1000);
    expect(h.get("Tus-Version")).toBe("1.0.0");
    expect(h.get("Tus-Extension")).toBe("creation,creation-with-upload,expiration,termination");
    expect(h.get("Tus-Max-Size")).toBe("1000");
    expect(h.get("Access-Control-Expose-Headers")).toContain("Upload-Offset");
  });
});
