import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { makeEvent } from "../../../shared/envelope.ts";
import { newId } from "../../../shared/ids.ts";
import { appliedIn } from "../../test/ingress.ts";

// POST /internal/rooms/:roomId/events takes one event: its body is bounded like every other edge body, checked on
// Content-Length before anything is read and while streaming when there is none.

const auth = { authorization: `Bearer ${env.INTERNAL_API_TOKEN}`, "content-type": "application/json" };
const url = (roomId: string) => `http://edge/internal/rooms/${roomId}/events`;
const live = (roomId: string) =>
  makeEvent("stream.live", { streamId: "s1", roomId, nodeId: "n", playbackUrl: "https://cdn.example/s1.m3u8", renditions: [] }, { source: "m", subject: "s" });

describe("POST /internal/rooms/:roomId/events body limit", () => {
  it("refuses a declared Content-Length over the limit with 413, before reading the body", async () => {
    const roomId = newId("room");
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new TextEncoder().encode("x".repeat(1024)));
      },
    });
    const res = await exports.default.fetch(url(roomId), {
      method: "POST",
      headers: { ...auth, "content-length": String(10 * 1024 * 1024) },
      body,
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("body_too_large");
    expect(pulled).toBeLessThan(4);
  });

  it("cuts a body without Content-Length off at the limit", async () => {
    let sent = 0;
    const chunk = new TextEncoder().encode("x".repeat(16 * 1024));
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent++;
        controller.enqueue(chunk);
      },
    });
    const res = await exports.default.fetch(url(newId("room")), { method: "POST", headers: auth, body, duplex: "half" } as RequestInit);
    expect(res.status).toBe(413);
    // 64 KiB in 16 KiB chunks, plus what was in flight
    expect(sent).toBeLessThan(12);
  });

  it("still applies an event within the limit", async () => {
    const roomId = newId("room");
    const event = live(roomId);
    const res = await exports.default.fetch(url(roomId), { method: "POST", headers: auth, body: JSON.stringify(event) });
    expect([res.status, await res.json()]).toEqual([200, { applied: true }]);
    expect(await appliedIn("Room", roomId, event.id)).toBe(true);
  });
});
