// The tus 1.0.0 resumable upload protocol (https://tus.io/protocols/resumable-upload), the parts Pulsecast
// speaks: core, creation, creation-with-upload, expiration and termination. Header parsing and the answers'
// headers, as pure functions; the upload object (upload-session.ts) does the storing.

export const TUS_VERSION = "1.0.0";
export const TUS_EXTENSIONS = ["creation", "creation-with-upload", "expiration", "termination"] as const;
export const OFFSET_CONTENT_TYPE = "application/offset+octet-stream";

/** Headers every tus answer carries (browsers may read them cross-origin). */
export function tusHeaders(extra: Record<string, string> = {}): Headers {
  const h = new Headers({ "Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store", ...extra });
  h.set("Access-Control-Expose-Headers", "Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, Upload-Offset, Upload-Length, Upload-Expires, Upload-Metadata, Location");
  return h;
}

/** The OPTIONS answer: what this server speaks. */
export function discoveryHeaders(maxSize: number): Headers {
  return tusHeaders({ "Tus-Version": TUS_VERSION, "Tus-Extension": TUS_EXTENSIONS.join(","), "Tus-Max-Size": String(maxSize) });
}

export type TusError = { status: number; code: string; message: string };
const err = (status: number, code: string, message: string): TusError => ({ status, code, message });

/** Every request but OPTIONS must say it speaks 1.0.0: 412 otherwise (the server lists what it speaks). */
export function checkTusResumable(headers: Headers): TusError | undefined {
  const v = headers.get("Tus-Resumable");
  if (v === null) return err(412, "tus_version_missing", "Tus-Resumable: 1.0.0 is required");
  if (v.trim() !== TUS_VERSION) return err(412, "tus_version_unsupported", `Tus-Resumable ${v.slice(0, 20)} is not supported; this server speaks ${TUS_VERSION}`);
  return undefined;
}

/** A non-negative integer header (Upload-Length, Upload-Offset): digits only, no sign, no exponent. */
export function parseNonNegative(value: string | null, name: string): { ok: true; value: number } | { ok: false; error: TusError } {
  if (value === null) return { ok: false, error: err(400, "tus_header_missing", `${name} is required`) };
  const v = value.trim();
  if (!/^\d{1,16}$/.test(v) || !Number.isSafeInteger(Number(v))) return { ok: false, error: err(400, "tus_header_invalid", `${name} must be a non-negative integer, got ${JSON.stringify(value.slice(0, 40))}`) };
  return { ok: true, value: Number(v) };
}

/**
 * `Upload-Metadata`: comma-separated `key base64value` pairs (a key alone means an empty value). Keys are
 * ASCII without spaces or commas and unique. Values are decoded as UTF-8.
 */
export function parseUploadMetadata(value: string | null): { ok: true; metadata: Record<string, string> } | { ok: false; error: TusError } {
  const metadata: Record<string, string> = {};
  if (value === null || value.trim() === "") return { ok: true, metadata };
  if (value.length > 4096) return { ok: false, error: err(400, "tus_metadata_invalid", "Upload-Metadata is longer than 4096 characters") };
  for (const pair of value.split(",")) {
    const parts = pair.trim().split(" ");
    const key = parts[0] ?? "";
    if (parts.length > 2 || !/^[\x21-\x2b\x2d-\x7e]{1,64}$/.test(key)) return { ok: false, error: err(400, "tus_metadata_invalid", `Upload-Metadata pair ${JSON.stringify(pair.slice(0, 40))} is not 'key base64value'`) };
    if (Object.hasOwn(metadata, key)) return { ok: false, error: err(400, "tus_metadata_invalid", `Upload-Metadata key '${key}' appears twice`) };
    const encoded = parts[1] ?? "";
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded) || encoded.length % 4 === 1) return { ok: false, error: err(400, "tus_metadata_invalid", `Upload-Metadata value of '${key}' is not base64`) };
    try {
      const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
      metadata[key] = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
    } catch {
      return { ok: false, error: err(400, "tus_metadata_invalid", `Upload-Metadata value of '${key}' is not base64 UTF-8`) };
    }
  }
  return { ok: true, metadata };
}

/** The inverse, for tests and clients. */
export function encodeUploadMetadata(metadata: Record<string, string>): string {
  const b64 = (s: string) => btoa(String.fromCharCode(...new TextEncoder().encode(s)));
  return Object.entries(metadata)
    .map(([k, v]) => `${k} ${b64(v)}`)
    .join(",");
}

/** RFC 9110 IMF-fixdate, as Upload-Expires wants it. */
export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}
