// Byte/text encodings used by signing and tokens. Web-standard only (runs in workerd and Node 22).

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function utf8(text: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(text) as Uint8Array<ArrayBuffer>;
}

export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]!);
  return btoa(binary);
}

/** Decodes standard base64; returns null (never throws) on malformed input. */
export function fromBase64(text: string): Uint8Array<ArrayBuffer> | null {
  try {
    const binary = atob(text);
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  } catch {
    return null;
  }
}

export function toBase64Url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes base64url; returns null on malformed input. */
export function fromBase64Url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return fromBase64(padded);
}

/** HMAC-SHA256 key from raw bytes, usable for both sign and verify. */
export function importHmacKey(raw: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

/**
 * UTF-8 length of a string in bytes. With `limit`, only encodes when the character count cannot settle whether
 * the text is within it (every character is 1 to 3 UTF-8 bytes per UTF-16 unit), so the common case is cheap;
 * the answer is then exact whenever it matters for `<= limit`.
 */
export function utf8ByteLength(text: string, limit?: number): number {
  if (limit !== undefined && text.length * 3 <= limit) return text.length;
  return encoder.encode(text).byteLength;
}
