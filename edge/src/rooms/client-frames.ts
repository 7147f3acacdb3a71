// Checks one client frame for a room (a small room and a big room's shards alike, so both answer bad input with
// the same codes): size, then JSON, then rate, then type and schema. Returns what to do: handle the frame,
// answer an error, or close the socket.
//
// Two budgets per connection: chat and everything else from one token bucket (ROOM_RATE_*), signaling (`signal`,
// `call.*`) from another (ROOM_SIGNAL_*), so a burst of ICE candidates never spends the chat budget and a chatty
// user never starves their own call. Which bucket pays is read from the frame's `type`, so the JSON is parsed
// before the rate is checked; frames are at most ROOM_MAX_FRAME_BYTES, and anything that is not a JSON object
// with a signaling type (garbage included) pays from the chat bucket, so a flood still costs tokens and ends in
// a close. Every error names the frame it refuses: its `type` in `ref` and its `id` when it carried one.
import { utf8ByteLength } from "../../../shared/encoding.ts";
import { CLIENT_FRAME_TYPES, type ClientFrame, clientFrame, ROOM_CLOSE, SIGNALING_FRAME_TYPES } from "../../../shared/protocol/room.ts";
import { newBucket, take, type TokenBucket } from "./rate-limit.ts";

export type FrameVerdict =
  | { kind: "frame"; frame: ClientFrame }
  | { kind: "error"; code: string; message: string; ref?: string; id?: string; retryAfterMs?: number }
  | { kind: "close"; code: number; reason: string };

export interface FrameLimits {
  maxFrameBytes: number;
  ratePerS: number;
  rateBurst: number;
  rateStrikes: number;
  signalRatePerS: number;
  signalBurst: number;
}

/** A connection's two buckets; the signaling one is made on the first signaling frame (rooms without calls never do). */
export interface ConnBuckets {
  chat: TokenBucket;
  signal?: TokenBucket;
}

export function newBuckets(limits: FrameLimits, now: number): ConnBuckets {
  return { chat: newBucket(limits.rateBurst, now) };
}

/** The `type` and `id` a parsed value claims, when they are strings of sane length (for naming it in errors). */
function claimed(value: unknown): { type?: string; id?: string } {
  if (typeof value !== "object" || value === null) return {};
  const { type, id } = value as { type?: unknown; id?: unknown };
  return {
    ...(typeof type === "string" && type.length <= 64 ? { type } : {}),
    ...(typeof id === "string" && id.length > 0 && id.length <= 64 ? { id } : {}),
  };
}

export function checkClientFrame(message: string | ArrayBuffer, buckets: ConnBuckets, now: number, limits: FrameLimits): FrameVerdict {
  const size = typeof message === "string" ? utf8ByteLength(message, limits.maxFrameBytes) : message.byteLength;
  if (size > limits.maxFrameBytes) return { kind: "close", code: ROOM_CLOSE.tooLarge, reason: `frame larger than ${limits.maxFrameBytes} bytes` };
  let value: unknown;
  let json = false;
  if (typeof message === "string") {
    try {
      value = JSON.parse(message);
      json = true;
    } catch {
      // answered after the rate check: garbage pays like anything else
    }
  }
  const { type, id } = claimed(value);
  const signaling = type !== undefined && SIGNALING_FRAME_TYPES.includes(type);
  const named = { ...(signaling ? { ref: type } : {}), ...(id !== undefined ? { id } : {}) };
  const bucket = signaling ? (buckets.signal ??= newBucket(limits.signalBurst, now)) : buckets.chat;
  const rate = signaling ? limits.signalRatePerS : limits.ratePerS;
  const taken = take(bucket, now, rate, signaling ? limits.signalBurst : limits.rateBurst);
  if (!taken.ok) {
    if (taken.strikes > limits.rateStrikes) return { kind: "close", code: ROOM_CLOSE.policy, reason: "rate limit exceeded" };
    const what = signaling ? "signaling frames" : "frames";
    return { kind: "error", code: "rate_limited", message: `more than ${rate} ${what}/s; this frame was not handled, send it again after retryAfterMs`, retryAfterMs: taken.retryAfterMs, ...named, ...(type !== undefined && !signaling ? { ref: type } : {}) };
  }
  if (typeof message !== "string") return { kind: "error", code: "invalid_frame", message: "binary frames are not part of the protocol; send JSON text" };
  if (!json) return { kind: "error", code: "bad_json", message: "frame is not valid JSON" };
  if (type === undefined || !(CLIENT_FRAME_TYPES as string[]).includes(type)) {
    const shown = (value as { type?: unknown } | null)?.type;
    return { kind: "error", code: "unknown_type", message: `unknown frame type ${JSON.stringify(shown ?? null).slice(0, 80)}; expected one of ${CLIENT_FRAME_TYPES.join(", ")}`, ...(id !== undefined ? { id } : {}) };
  }
  const parsed = clientFrame.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { kind: "error", code: "invalid_frame", message: `${issue?.path.join(".") || type}: ${issue?.message ?? "invalid"}`, ref: type, ...(id !== undefined ? { id } : {}) };
  }
  return { kind: "frame", frame: parsed.data };
}
