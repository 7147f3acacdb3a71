// HTTP face of the per-user inbox. User routes are JWT-checked and always address the caller's own inbox
// (user id = the token's `sub`), so no route takes a user id from the client. The internal route lets
// trusted services post a notification to any user.
import { type Context, Hono } from "hono";
import { MAX_EVENT_BYTES, parseEventJson } from "../../../shared/envelope.ts";
import { checkUserId } from "../../../shared/names.ts";
import { listRequest, readRequest } from "../../../shared/protocol/inbox.ts";
import { errorResponse, requireUser } from "../auth/index.ts";
import type { AppEnv } from "../env.ts";
import { bodyTextOr413 } from "../http/body.ts";
import { linkProblem } from "../http/links.ts";
import { edgeSettings } from "../settings.ts";
import { requireInternalToken } from "../internal/auth.ts";
import { inboxEffectOf } from "./events.ts";

/** Largest body of POST /inbox/read: 100 ids of 128 characters fit with room to spare. */
const MAX_READ_BODY_BYTES = 16 * 1024;

export const inboxRoutes = new Hono<AppEnv>();

function ownInbox(c: Context<AppEnv>) {
  return c.env.Inbox.getByName(c.var.user.userId);
}

/** Query strings are text: turn present numbers into numbers, and let the schema say what is wrong. */
function queryNumber(value: string | undefined): number | undefined {
  return value === undefined || value === "" ? undefined : Number(value);
}

function describeIssue(error: { issues: { path: PropertyKey[]; message: string }[] }): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.length ? `${issue.path.join(".")}: ` : ""}${issue.message}` : "invalid";
}

/**
 * GET /inbox?before=<seq>&limit=<1..100>&unread=<true|false> — a page of the caller's notifications, newest
 * first: `{ notifications, unread, nextBefore? }`. Pass `nextBefore` as `before` for the next page.
 */
inboxRoutes.get("/inbox", requireUser(), async (c) => {
  const unreadParam = c.req.query("unread");
  if (unreadParam !== undefined && !["true", "false", "1", "0"].includes(unreadParam)) {
    return errorResponse(400, "invalid_query", "unread: expected true or false");
  }
  const query = listRequest.safeParse({
    before: queryNumber(c.req.query("before")),
    limit: queryNumber(c.req.query("limit")),
    unreadOnly: unreadParam === undefined ? undefined : unreadParam === "true" || unreadParam === "1",
  });
  if (!query.success) return errorResponse(400, "invalid_query", describeIssue(query.error));
  return c.json(await ownInbox(c).list(query.data));
});

/** GET /inbox/unread — `{ unread }`, the caller's unread count (cheap: for badges). */
inboxRoutes.get("/inbox/unread", requireUser(), async (c) => c.json({ unread: await ownInbox(c).unread() }));

/**
 * POST /inbox/read — body `{ "ids": [...] }` (1-100), `{ "upTo": <seq> }` or `{ "all": true }`.
 * Answers `{ marked, unread }`; every open connection of the user gets a `read` frame.
 */
inboxRoutes.post("/inbox/read", requireUser(), async (c) => {
  const read = await bodyTextOr413(c.req.raw, MAX_READ_BODY_BYTES);
  if ("response" in read) return read.response;
  let body: unknown;
  try {
    body = JSON.parse(read.text);
  } catch {
    return errorResponse(400, "bad_json", "body is not valid JSON");
  }
  const req = readRequest.safeParse(body);
  if (!req.success) return errorResponse(400, "invalid_request", describeIssue(req.error));
  return c.json(await ownInbox(c).markRead(req.data));
});

/**
 * POST /internal/users/:userId/notifications — Authorization: Bearer INTERNAL_API_TOKEN; body: one
 * `notification.requested` envelope whose data.userId is :userId. Stored and delivered exactly once per
 * event id: `{ applied: true, connections }` the first time (connections = open sockets it reached; 0 means
 * it waits in the inbox), `{ applied: false, connections: 0 }` for a repeat. The inbox writes the same
 * notification.sent answer (channel `socket`) as for a bus event, in the same transaction. 413
 * `push_payload_too_large` when its push payload would exceed NOTIFY_PUSH_MAX_PAYLOAD_BYTES.
 */
inboxRoutes.post("/internal/users/:userId/notifications", requireInternalToken(), async (c) => {
  const userId = c.req.param("userId");
  const check = checkUserId(userId);
  if (!check.ok) return errorResponse(400, "invalid_user_id", check.reason);
  const read = await bodyTextOr413(c.req.raw, MAX_EVENT_BYTES);
  if ("response" in read) return read.response;
  const parsed = parseEventJson(read.text);
  if (!parsed.ok) return errorResponse(400, "invalid_event", parsed.error);
  const event = parsed.event;
  const badLink = linkProblem(event, edgeSettings(c.env));
  if (badLink) return errorResponse(400, "url_not_allowed", badLink);
  if (event.type !== "notification.requested") {
    return errorResponse(400, "unsupported_event", `this endpoint takes notification.requested events, not '${event.type}'`);
  }
  if (event.data.userId !== userId) {
    return errorResponse(400, "user_mismatch", `event is for user '${event.data.userId}', posted to user '${userId}'`);
  }
  // The same check the inbox makes, answered here as what it is: the notification is too large to push.
  const effect = inboxEffectOf(event, userId, edgeSettings(c.env).pushMaxPayloadBytes);
  if (!effect.ok) return errorResponse(413, "push_payload_too_large", effect.error);
  return c.json(await c.env.Inbox.getByName(userId).applyEvent(event));
});
