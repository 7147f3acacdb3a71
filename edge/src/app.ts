import { Hono } from "hono";
import { routePartykitRequest } from "partyserver";
import { answerSubprotocol, guardPartyRequest, isPublicParty, normalizePartyUrl, stripInternalHeaders } from "./auth/party-guard.ts";
import { errorResponse } from "./auth/errors.ts";
import { isRoomMoved, rememberGrown } from "./bigrooms/grown.ts";
import { bigRoomOf, bigRoomRequest, bigRoomRoutes, roomIdOf } from "./bigrooms/route.ts";
import { callRoutes } from "./calls/routes.ts";
import { browserCors } from "./cors/cors.ts";
import type { AppEnv } from "./env.ts";
import { fleetRoutes } from "./fleet/routes.ts";
import { healthRoutes } from "./health/routes.ts";
import { inboxRoutes } from "./inbox/routes.ts";
import { ingressRoutes } from "./ingress/routes.ts";
import { internalRoutes } from "./internal/routes.ts";
import { llhlsRoutes } from "./llhls/routes.ts";
import { devRoutes } from "./dev/sign-in.ts";
import { notifyRoutes } from "./notify/routes.ts";
import { playbackRoutes } from "./playback/routes.ts";
import { checkEdgeSettings, edgeSettings } from "./settings.ts";
import { streamRoutes } from "./streams/routes.ts";
import { webRoutes } from "./web/routes.ts";
import { videoRoutes } from "./videos/routes.ts";

/** Envs whose problems were already logged: each misconfiguration is logged once, not once per request. */
const reported = new WeakSet<object>();

/** The front Worker's HTTP surface. Each area mounts its own routes here; `/parties/*` goes to the objects. */
export function createApp() {
  const app = new Hono<AppEnv>();
  // A Worker cannot refuse to start: with any setting invalid it refuses every request instead, and logs every
  // problem once. The client learns nothing about the configuration.
  app.use("*", async (c, next) => {
    const checked = checkEdgeSettings(c.env);
    if (checked.ok) return next();
    if (!reported.has(c.env)) {
      reported.add(c.env);
      console.error(`edge misconfigured; refusing every request until fixed:\n  - ${checked.problems.join("\n  - ")}`);
    }
    return c.json({ error: "misconfigured" }, 500);
  });
  // Browser-facing HTTP (history, inbox) is readable cross-origin; see cors/cors.ts.
  for (const path of ["/inbox", "/inbox/*", "/parties/*", "/push/*", "/notifications/*", "/calls/*"]) app.use(path, browserCors());
  app.route("/", healthRoutes);
  app.route("/", inboxRoutes);
  app.route("/", ingressRoutes);
  // Before internalRoutes: the streams' own internal route (key checks) is authenticated there too.
  app.route("/", streamRoutes);
  app.route("/", playbackRoutes);
  app.route("/", fleetRoutes);
  app.route("/", llhlsRoutes);
  app.route("/", internalRoutes);
  app.route("/", bigRoomRoutes);
  app.route("/", devRoutes);
  app.route("/", webRoutes);
  app.route("/", videoRoutes);
  app.route("/", notifyRoutes);
  app.route("/", callRoutes);

  // Rooms and inboxes (partyserver): `/parties/room/<roomId>` and `/parties/inbox/<userId>`, WebSocket or HTTP.
  // Every request is authenticated and rewritten by guardPartyRequest before an object sees it.
  app.all("/parties/*", async (c) => {
    // routePartykitRequest would route to any DO binding by its kebab name; only rooms and inboxes are public.
    const party = new URL(c.req.url).pathname.split("/")[2] ?? "";
    if (!isPublicParty(party)) return errorResponse(404, "not_found", `no party '${party}'; use /parties/room/<roomId> or /parties/inbox/<userId>`);
    const url = normalizePartyUrl(new URL(c.req.url), party);
    if (!url) return errorResponse(400, party === "room" ? "invalid_room_id" : "invalid_user_id", "the name in the path has a malformed %-escape");
    const req = new Request(url, c.req.raw);
    // Before anything else: a client copy of an internal header must never reach an object.
    stripInternalHeaders(req.headers);
    // Big rooms (ROOM_SHARDED, or grown past ROOM_SHARD_AT) are served by shards and a coordinator; see bigrooms/route.ts.
    const bigRoom = bigRoomOf(url, edgeSettings(c.env));
    if (bigRoom) return bigRoomRequest(req, c.env, bigRoom);
    const guard = (r: Request, lobby: { name: string }) => guardPartyRequest(r, c.env, party, lobby.name);
    const res = await routePartykitRequest(req.clone(), c.env, { prefix: "parties", onBeforeConnect: guard, onBeforeRequest: guard });
    if (!res) return errorResponse(404, "not_found", "use /parties/room/<roomId> or /parties/inbox/<userId>");
    const grown = isRoomMoved(res) ? roomIdOf(url) : null;
    if (grown) {
      // The room grew big (bigrooms/grown.ts): this request, and later ones through this isolate, go to its shards.
      rememberGrown(grown);
      return bigRoomRequest(req, c.env, grown);
    }
    const protocol = res.status === 101 && res.webSocket ? answerSubprotocol(req) : null;
    if (!protocol) return res;
    const headers = new Headers(res.headers);
    headers.set("sec-websocket-protocol", protocol);
    return new Response(null, { status: 101, webSocket: res.webSocket, headers });
  });

  app.notFound(() => errorResponse(404, "not_found", "no such route"));
  app.onError((error) => {
    console.error("unhandled error in the front Worker:", error);
    return errorResponse(500, "internal_error", "internal error");
  });
  return app;
}
