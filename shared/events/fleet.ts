import { z } from "zod";
import { streamId } from "./common.ts";

// The media fleet: each node says, every few seconds, that it is there and how loaded it is. The edge keeps the
// latest one per node (the Fleet object) and hands broadcasters the RTMP URL of a healthy node with room to spare.
// Heartbeats are news of the moment, not history: they travel on plain NATS (no stream keeps them), and one that
// is lost is replaced by the next.

/** Node ids name nodes in events and logs (MEDIA_NODE_ID). */
export const NODE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** An RTMP(S) ingest URL with its app, as broadcasters put it in OBS's "Server" field. */
export const rtmpServerUrl = z
  .string()
  .max(512)
  .superRefine((value, ctx) => {
    let u: URL;
    try {
      u = new URL(value);
    } catch {
      return ctx.addIssue({ code: "custom", message: "not an absolute URL" });
    }
    if (u.protocol !== "rtmp:" && u.protocol !== "rtmps:") ctx.addIssue({ code: "custom", message: "must be an rtmp: or rtmps: URL" });
    if (u.username || u.password) ctx.addIssue({ code: "custom", message: "must not carry credentials" });
  });

export const nodeHeartbeat = z.object({
  nodeId: z.string().regex(NODE_ID_PATTERN, "not a valid node id"),
  /**
   * where broadcasters publish to this node (MEDIA_PUBLIC_RTMP_URL), OBS's "Server" field. Not named `…Url`: the
   * edge's link policy (web links only) applies to fields named so, and this one is rtmp(s):
   */
  rtmpServer: rtmpServerUrl,
  /** ready: takes new streams; draining: finishing what it has, takes nothing new; unhealthy: a probe fails */
  status: z.enum(["ready", "draining", "unhealthy"]),
  /** the probe that failed, when unhealthy (names only, never why) */
  failing: z.array(z.string().max(32)).max(8).optional(),
  liveStreams: z.number().int().nonnegative(),
  maxLiveStreams: z.number().int().positive(),
  /** the live streams this node carries (so the edge sends a broadcaster back to the node that owns its stream) */
  streams: z.array(streamId).max(1000),
  /** busy share of the host's CPUs over the last interval, 0..1 */
  cpu: z.number().min(0).max(1),
  /** VOD jobs running, and how many this node runs at once (0: it takes none) */
  jobs: z.number().int().nonnegative(),
  maxJobs: z.number().int().nonnegative(),
  /** how often this node sends one, ms: the edge counts a node gone after a few missed */
  intervalMs: z.number().int().positive().max(60_000),
  /** grows by one per heartbeat of this process; with `bootId`, orders heartbeats that arrive out of order */
  seq: z.number().int().nonnegative(),
  /** a new value each time the node process starts */
  bootId: z.string().min(1).max(64),
});

export type NodeHeartbeat = z.infer<typeof nodeHeartbeat>;
