import type { z } from "zod";
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

/** The largest JSON body of the edge's small API routes (streams, videos, push, preferences). */
export const SMALL_JSON_BYTES = 16 * 1024;

/**
 * A small JSON body checked with `schema`: read with the one body limit (never more than `maxBytes` in memory),
 * then parsed; an empty body reads as `{}`. The answer to return is 413 `body_too_large`, 400 `invalid_json` or
 * 400 `invalid_body` naming the first problem.
 */
export async function jsonBodyOr4xx<T extends z.ZodTypeAny>(request: Request, schema: T, maxBytes = SMALL_JSON_BYTES): Promise<{ ok: true; value: z.infer<T> } | { ok: false; res: Response }> {
  const body = await bodyTextOr413(request, maxBytes);
  if ("response" in body) return { ok: false, res: body.response };
  let raw: unknown = {};
  if (body.text.trim() !== "") {
    try {
      raw = JSON.parse(body.text);
    } catch {
      return { ok: false, res: errorResponse(400, "invalid_json", "request body is not JSON") };
    }
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, res: errorResponse(400, "invalid_body", `${issue?.path.join(".") || "body"}: ${issue?.message ?? "invalid"}`) };
  }
  return { ok: true, value: parsed.data };
}
