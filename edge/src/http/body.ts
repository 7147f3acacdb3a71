import { errorResponse } from "../auth/errors.ts";

// Reads a request body as text without ever holding more than `maxBytes` of it.
//
// A declared Content-Length over the limit is refused before a single byte is read; a body without one
// (chunked) is read until it crosses the limit and then cancelled, so an oversized or endless body costs
// at most `maxBytes` of memory.

export type BodyResult = { ok: true; text: string } | { ok: false; reason: "too-large"; message: string };

export async function readBodyLimited(request: Request, maxBytes: number): Promise<BodyResult> {
  const tooLarge = (what: string): BodyResult => ({ ok: false, reason: "too-large", message: `${what} is larger than ${maxBytes} bytes` });
  const declared = request.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > maxBytes) return tooLarge("declared body");
  if (!request.body) return { ok: true, text: "" };
  // A declared length within the limit bounds what the runtime will deliver: read it in one go (the hot path).
  if (declared !== null && /^\d+$/.test(declared)) return { ok: true, text: await request.text() };

  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      return tooLarge("body");
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  // Not fatal on bad UTF-8: the signature is over the sender's text, so mangled bytes fail verification anyway.
  return { ok: true, text: new TextDecoder().decode(bytes) };
}

/**
 * The body as text, or the 413 `body_too_large` answer to return when it is over `maxBytes` (declared or
 * streamed): the one body limit of the edge's JSON routes.
 */
export async function bodyTextOr413(request: Request, maxBytes: number): Promise<{ text: string } | { response: Response }> {
  const body = await readBodyLimited(request, maxBytes);
  if (body.ok) return { text: body.text };
  return { response: errorResponse(413, "body_too_large", body.message) };
}
