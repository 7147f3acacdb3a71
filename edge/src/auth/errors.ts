// One JSON error shape for every HTTP refusal at the edge: `{ "error": { "code": "...", "message": "..." } }`.
// Clients switch on `code` (stable, documented in README "Error codes"); `message` is for humans.

export interface ErrorBody {
  error: { code: string; message: string };
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

export function errorResponse(status: number, code: string, message: string, headers?: HeadersInit): Response {
  const h = new Headers(headers);
  h.set("content-type", "application/json; charset=utf-8");
  return new Response(JSON.stringify(errorBody(code, message)), { status, headers: h });
}
