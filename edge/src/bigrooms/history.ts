// Paged chat history over HTTP (GET /parties/room/<roomId>/history?before=&limit=), the same contract for small
// and big rooms; in a big room the coordinator answers it (it stores the chat once for everyone).
import { errorResponse } from "../auth/errors.ts";
import type { RoomStore } from "../rooms/room-store.ts";

export const HISTORY_PAGE_DEFAULT = 50;
export const HISTORY_PAGE_MAX = 200;

export function historyResponse(store: RoomStore, url: URL): Response {
  const beforeRaw = url.searchParams.get("before");
  const limitRaw = url.searchParams.get("limit");
  const before = beforeRaw === null ? undefined : Number(beforeRaw);
  const limit = limitRaw === null ? HISTORY_PAGE_DEFAULT : Number(limitRaw);
  if (before !== undefined && (!Number.isSafeInteger(before) || before < 1)) {
    return errorResponse(400, "invalid_query", "`before` must be a positive integer message id");
  }
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > HISTORY_PAGE_MAX) {
    return errorResponse(400, "invalid_query", `\`limit\` must be an integer from 1 to ${HISTORY_PAGE_MAX}`);
  }
  const messages = store.page(before, limit);
  const first = messages[0];
  const nextBefore = first && first.id > 1 && messages.length === limit ? first.id : null;
  return Response.json({ messages, nextBefore });
}
