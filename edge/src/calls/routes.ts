// GET /calls/ice-servers (JWT): the ICE servers a call client hands to RTCPeerConnection — STUN URLs from
// CALL_STUN_URLS, TURN URLs from CALL_TURN_URLS with a credential minted for the caller (turn.ts), valid for
// CALL_TURN_TTL_S. Viewers cannot take part in calls, so they get none. Never cached: each answer is per user
// and per moment.
import { Hono } from "hono";
import { errorResponse } from "../auth/errors.ts";
import { requireUser } from "../auth/middleware.ts";
import type { AppEnv } from "../env.ts";
import { edgeSettings } from "../settings.ts";
import { iceServersFor } from "./turn.ts";

export const callRoutes = new Hono<AppEnv>();

callRoutes.get("/calls/ice-servers", requireUser(), async (c) => {
  const user = c.var.user;
  if (user.role === "viewer") return errorResponse(403, "call_forbidden", "viewers may watch a room but not join its call, so they get no ICE servers");
  const s = edgeSettings(c.env);
  const body = await iceServersFor({ stunUrls: s.callStunUrls, turnUrls: s.callTurnUrls, ...(s.callTurnSecret ? { turnSecret: s.callTurnSecret } : {}), ttlS: s.callTurnTtlS }, user.userId);
  return c.json(body, 200, { "cache-control": "no-store" });
});
