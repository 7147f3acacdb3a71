// HTTP face of the offline channels. User routes are JWT-checked and address the caller's own inbox:
//   GET    /push/sw.js                   the service worker that shows pushes (service-worker.ts)
//   GET    /push/vapid-public-key        `{ publicKey }` for PushManager.subscribe({ applicationServerKey })
//   POST   /push/subscriptions           the browser's PushSubscription JSON -> 201 (new) or 200 (known endpoint)
//   GET    /push/subscriptions           the caller's devices (keys not echoed)
//   DELETE /push/subscriptions/:id       204, or 404 when there is no such subscription
//   GET    /notifications/preferences    the caller's preferences (defaults until set)
//   PUT    /notifications/preferences    the whole preferences object (see shared/protocol/notifications.ts)
// and, without a login, the email unsubscribe link (signed per user; RFC 8058 one-click POST):
//   GET    /notifications/unsubscribe?u=&s=   a page with a button (a GET never changes anything: link scanners)
//   POST   /notifications/unsubscribe?u=&s=   turns email off for the user
import { type Context, Hono } from "hono";
import { checkUserId } from "../../../shared/names.ts";
import { notificationPreferences, pushSubscriptionJson } from "../../../shared/protocol/notifications.ts";
import { errorResponse, requireUser } from "../auth/index.ts";
import type { AppEnv } from "../env.ts";
import { bodyTextOr413 } from "../http/body.ts";
import { edgeSettings } from "../settings.ts";
import { SERVICE_WORKER_JS } from "./service-worker.ts";
import { checkUnsubscribe } from "./unsubscribe.ts";

const MAX_BODY_BYTES = 8 * 1024;

export const notifyRoutes = new Hono<AppEnv>();

function ownInbox(c: Context<AppEnv>) {
  return c.env.Inbox.getByName(c.var.user.userId);
}

function describeIssue(error: { issues: { path: PropertyKey[]; message: string }[] }): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.length ? `${issue.path.join(".")}: ` : ""}${issue.message}` : "invalid";
}

async function jsonBody(c: Context<AppEnv>): Promise<{ value: unknown } | { response: Response }> {
  const read = await bodyTextOr413(c.req.raw, MAX_BODY_BYTES);
  if ("response" in read) return read;
  try {
    return { value: JSON.parse(read.text) };
  } catch {
    return { response: errorResponse(400, "bad_json", "body is not valid JSON") };
  }
}

function pushOff(c: Context<AppEnv>): Response | null {
  const s = edgeSettings(c.env);
  return s.vapidPublicKey && s.vapidPrivateKey ? null : errorResponse(503, "push_disabled", "Web Push is not configured on this edge (VAPID keys unset)");
}

notifyRoutes.get("/push/sw.js", (c) => c.body(SERVICE_WORKER_JS, 200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-cache" }));

notifyRoutes.get("/push/vapid-public-key", (c) => pushOff(c) ?? c.json({ publicKey: edgeSettings(c.env).vapidPublicKey }));

notifyRoutes.post("/push/subscriptions", requireUser(), async (c) => {
  const off = pushOff(c);
  if (off) return off;
  const body = await jsonBody(c);
  if ("response" in body) return body.response;
  const sub = pushSubscriptionJson.safeParse(body.value);
  if (!sub.success) return errorResponse(400, "invalid_subscription", describeIssue(sub.error));
  const endpoint = new URL(sub.data.endpoint);
  // Push services are https (RFC 8030); a local push service in development is http, allowed like other local links.
  if (endpoint.protocol !== "https:" && !(endpoint.protocol === "http:" && edgeSettings(c.env).allowHttpUrls)) {
    return errorResponse(400, "invalid_subscription", "endpoint: must be an https: URL");
  }
  const { subscription, created } = await ownInbox(c).addPushSubscription(sub.data);
  return c.json(subscription, created ? 201 : 200);
});

notifyRoutes.get("/push/subscriptions", requireUser(), async (c) => c.json({ subscriptions: await ownInbox(c).pushSubscriptions() }));

notifyRoutes.delete("/push/subscriptions/:id", requireUser(), async (c) => {
  const id = c.req.param("id");
  if (!/^sub_[0-9a-f]{32}$/.test(id)) return errorResponse(404, "not_found", "no such push subscription");
  return (await ownInbox(c).removePushSubscription(id)) ? c.body(null, 204) : errorResponse(404, "not_found", "no such push subscription");
});

notifyRoutes.get("/notifications/preferences", requireUser(), async (c) => c.json(await ownInbox(c).preferences()));

notifyRoutes.put("/notifications/preferences", requireUser(), async (c) => {
  const body = await jsonBody(c);
  if ("response" in body) return body.response;
  const prefs = notificationPreferences.safeParse(body.value);
  if (!prefs.success) return errorResponse(400, "invalid_preferences", describeIssue(prefs.error));
  return c.json(await ownInbox(c).setPreferences(prefs.data));
});

async function unsubscribeTarget(c: Context<AppEnv>): Promise<{ userId: string } | { response: Response }> {
  const secret = edgeSettings(c.env).unsubscribeSecret;
  if (!secret) return { response: errorResponse(503, "unsubscribe_disabled", "UNSUBSCRIBE_SECRET is not set") };
  const userId = c.req.query("u") ?? "";
  const signature = c.req.query("s") ?? "";
  if (!checkUserId(userId).ok || !(await checkUnsubscribe(secret, userId, signature))) {
    return { response: errorResponse(403, "invalid_unsubscribe_link", "this unsubscribe link is not valid") };
  }
  return { userId };
}

notifyRoutes.get("/notifications/unsubscribe", async (c) => {
  const target = await unsubscribeTarget(c);
  if ("response" in target) return target.response;
  const action = new URL(c.req.url);
  const html = `<!doctype html><meta charset="utf-8"><title>Unsubscribe</title><form method="post" action="${action.pathname}${action.search.replace(/&/g, "&amp;").replace(/"/g, "&quot;")}"><p>Stop all notification emails?</p><button>Unsubscribe</button></form>`;
  return c.html(html);
});

notifyRoutes.post("/notifications/unsubscribe", async (c) => {
  const target = await unsubscribeTarget(c);
  if ("response" in target) return target.response;
  await c.env.Inbox.getByName(target.userId).unsubscribeEmail();
  return c.html(`<!doctype html><meta charset="utf-8"><title>Unsubscribed</title><p>You will get no more notification emails.</p>`);
});
