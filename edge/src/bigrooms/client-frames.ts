// Checks one client frame the way a small room does (size, then rate, then JSON, type and schema), so a big
// room's shards answer bad input with the same codes. Returns what to do: handle the frame, answer an error, or
// close the socket.
import { utf8ByteLength } from "../../../shared/encoding.ts";
import { CLIENT_FRAME_TYPES, type ClientFrame, clientFrame, ROOM_CLOSE } from "../../../shared/protocol/room.ts";
import { take, type TokenBucket } from "../rooms/rate-limit.ts";

export type FrameVerdict =
  | { kind: "frame"; frame: ClientFrame }
  | { kind: "error"; code: string; message: string; ref?: string; retryAfterMs?: number }
  | { kind: "close"; code: number; reason: string };

export interface FrameLimits {
  maxFrameBytes: number;
  ratePerS: number;
  rateBurst: number;
  rateStrikes: number;
}

export function checkClientFrame(message: string | ArrayBuffer, bucket: TokenBucket, now: number, limits: FrameLimits): FrameVerdict {
  const size = typeof message === "string" ? utf8ByteLength(message, limits.maxFrameBytes) : message.byteLength;
  if (size > limits.maxFrameBytes) return { kind: "close", code: ROOM_CLOSE.tooLarge, reason: `frame larger than ${limits.maxFrameBytes} bytes` };
  // Rate before parsing: garbage floods cost tokens like anything else.
  const taken = take(bucket, now, limits.ratePerS, limits.rateBurst);
  if (!taken.ok) {
    if (taken.strikes > limits.rateStrikes) return { kind: "close", code: ROOM_CLOSE.policy, reason: "rate limit exceeded" };
    return { kind: "error", code: "rate_limited", message: `more than ${limits.ratePerS} frames/s; slow down`, retryAfterMs: taken.retryAfterMs };
  }
  if (typeof message !== "string") return { kind: "error", code: "invalid_frame", message: "binary frames are not part of the protocol; send JSON text" };
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return { kind: "error", code: "bad_json", message: "frame is not valid JSON" };
  }
  const type = (value as { type?: unknown } | null)?.type;
  if (typeof type !== "string" || !(CLIENT_FRAME_TYPES as string[]).includes(type)) {
    return { kind: "error", code: "unknown_type", message: `unknown frame type ${JSON.stringify(type ?? null).slice(0, 80)}; expected one of ${CLIENT_FRAME_TYPES.join(", ")}` };
  }
  const parsed = clientFrame.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { kind: "error", code: "invalid_frame", message: `${issue?.path.join(".") || type}: ${issue?.message ?? "invalid"}`, ref: type };
  }
  return { kind: "frame", frame: parsed.data };
}
