// Client frames of the inbox: size, JSON and schema checks in one pure function, so every bad frame gets
// the same clear error code (and tests need no socket to cover them).
import { utf8ByteLength } from "../../../shared/encoding.ts";
import { type InboxClientFrame, inboxClientFrame, inboxClientFrameTypes, type InboxErrorCode } from "../../../shared/protocol/inbox.ts";

export type ParsedFrame = { ok: true; frame: InboxClientFrame } | { ok: false; code: InboxErrorCode; message: string };

export function parseClientFrame(message: string | ArrayBuffer | ArrayBufferView, maxFrameBytes: number): ParsedFrame {
  if (typeof message !== "string") return { ok: false, code: "bad_json", message: "binary frames are not accepted: send JSON text" };
  // UTF-16 length is a lower bound of the UTF-8 size: past the limit without measuring.
  if (message.length > maxFrameBytes || utf8ByteLength(message, maxFrameBytes) > maxFrameBytes) {
    return { ok: false, code: "frame_too_large", message: `frame larger than ${maxFrameBytes} bytes` };
  }
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return { ok: false, code: "bad_json", message: "frame is not valid JSON" };
  }
  const type = typeof value === "object" && value !== null ? (value as { type?: unknown }).type : undefined;
  if (typeof type !== "string" || !inboxClientFrameTypes.includes(type)) {
    return { ok: false, code: "unknown_type", message: `unknown frame type ${JSON.stringify(type ?? null)}: expected one of ${inboxClientFrameTypes.join(", ")}` };
  }
  const parsed = inboxClientFrame.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
    return { ok: false, code: "bad_frame", message: `bad '${type}' frame: ${where}${issue?.message ?? "invalid"}` };
  }
  return { ok: true, frame: parsed.data };
}
