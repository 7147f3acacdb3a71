// Low-latency HLS at the edge: the media nodes' announcements in, and the LL-HLS playlists (and parts that are
// announced but not fetched yet) out through /play.
//
//   POST /hooks/llhls/:streamId/announce   signed the Standard Webhooks way with EDGE_INGRESS_SECRET (as
//                                          /hooks/events): size (413) -> signature and timestamp (401; 503 when
//                                          no secret is configured) -> JSON and the shared schema (400) -> the
//                                          stream named in the path (400) -> the stream's LowLatencyStream object
//   GET /play/<id or token>/<broadcastId>/<rendition>/ll.m3u8[?_HLS_msn=M[&_HLS_part=P]]
//                                          answered by that object (or, with LLHLS_RELAYS, one of its relays),
//                                          after /play's own access checks (public id, or a viewer token)
import { Hono } from "hono";
import { LL_PLAYLIST_NAME, MAX_ANNOUNCE_BYTES, parseAnnounce } from "../../../shared/llhls/announce.ts";
import { checkStreamId } from "../../../shared/names.ts";
import { verifyWebhook } from "../../../shared/signing/webhooks.ts";
import { errorResponse } from "../auth/errors.ts";
import type { AppEnv, Env } from "../env.ts";
import { readBodyLimited } from "../http/body.ts";
import { edgeSettings } from "../settings.ts";
import { parseDirectives } from "./model.ts";
import type { PlaylistAnswer, PlaylistRequest } from "./stream-object.ts";

export const llhlsRoutes = new Hono<AppEnv>();

llhlsRoutes.post("/hooks/llhls/:streamId/announce", async (c) => {
  const streamId = c.req.param("streamId");
  const body = await readBodyLimited(c.req.raw, MAX_ANNOUNCE_BYTES);
  if (!body.ok) return errorResponse(413, "too_large", body.message);
  const settings = edgeSettings(c.env);
  const verified = await verifyWebhook(settings.edgeIngressSecret ?? [], c.req.raw.headers, body.text, { toleranceS: settings.ingressToleranceS });
  if (!verified.ok) {
    const misconfigured = verified.reason === "no-secret";
    if (misconfigured) console.error("POST /hooks/llhls refused: EDGE_INGRESS_SECRET is not set");
    return errorResponse(misconfigured ? 503 : 401, verified.reason.replaceAll("-", "_"), verified.message);
  }
  let json: unknown;
  try {
    json = JSON.parse(body.text);
  } catch {
    return errorResponse(400, "invalid_json", "request body is not JSON");
  }
  const parsed = parseAnnounce(json);
  if (!parsed.ok) return errorResponse(400, "invalid_announce", parsed.error);
  if (!checkStreamId(streamId).ok || parsed.announce.streamId !== streamId) return errorResponse(400, "stream_mismatch", "the announcement is for another stream than the path names");
  const result = await c.env.LowLatencyStream.getByName(streamId).announce(parsed.announce);
  return c.json(result);
});

const LL_PATH = new RegExp(`^([A-Za-z0-9_-]{1,64})/([A-Za-z0-9_-]{1,32})/${LL_PLAYLIST_NAME.replace(".", "\\.")}$`);
const PART_PATH = /^([A-Za-z0-9_-]{1,64})\/([A-Za-z0-9_-]{1,32})\/(part\d{1,12}\.m4s)$/;

/** `<broadcastId>/<rendition>/ll.m3u8`: a low-latency media playlist, which the stream's object serves. */
export function lowLatencyPlaylistOf(path: string): { broadcastId: string; rendition: string } | undefined {
  const m = LL_PATH.exec(path);
  return m ? { broadcastId: m[1]!, rendition: m[2]! } : undefined;
}

/** Which relay serves a viewer: the same one for the same address, spread evenly over `relays`. */
export function relayShard(viewer: string, relays: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < viewer.length; i++) h = Math.imul(h ^ viewer.charCodeAt(i), 0x01000193);
  return (h >>> 0) % relays;
}

/** The playlist answer for a viewer's request: from the stream's object, or through a relay when LLHLS_RELAYS > 0. */
export async function lowLatencyPlaylist(env: Env, streamId: string, req: PlaylistRequest, opts: { gzip: boolean; viewer: string }): Promise<PlaylistAnswer> {
  const relays = edgeSettings(env).llhlsRelays;
  if (relays > 0) {
    const relay = env.LowLatencyRelay.getByName(`${streamId}:${relayShard(opts.viewer, relays)}`);
    return (await relay.playlist(streamId, req, { gzip: opts.gzip })) as PlaylistAnswer;
  }
  return (await env.LowLatencyStream.getByName(streamId).playlist(req, { gzip: opts.gzip })) as PlaylistAnswer;
}

/** Directives from the URL, or the 400 to answer. */
export { parseDirectives };

/**
 * A part that is not stored yet: when it is the one the playlist hints at, wait (at most three target durations)
 * until it is announced, which happens only after it is stored. True: it is stored now.
 */
export async function awaitLowLatencyPart(env: Env, streamId: string, path: string): Promise<boolean> {
  const m = PART_PATH.exec(path);
  if (!m) return false;
  return env.LowLatencyStream.getByName(streamId).awaitPart({ broadcastId: m[1]!, rendition: m[2]!, uri: m[3]! });
}
