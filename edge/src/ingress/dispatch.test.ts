import { describe, expect, it } from "vitest";
import { type Envelope, makeEvent } from "../../../shared/envelope.ts";
import { eventTypes } from "../../../shared/events/index.ts";
import { sentEventId } from "../../../shared/notification-ids.ts";
import { routeFor } from "./dispatch.ts";

const src = { source: "media-node/n1", subject: "x" };
const url = "https://cdn.example/a/master.m3u8";

describe("routeFor", () => {
  it("sends stream events to the room in the event, else the room named after the stream", () => {
    expect(routeFor(makeEvent("stream.ended", { streamId: "s1", roomId: "r1", nodeId: "n", durationS: 3, reason: "publisher-left" }, src))).toEqual({ kind: "objects", rooms: ["r1"], inboxes: [] });
    expect(routeFor(makeEvent("stream.live", { streamId: "s1", nodeId: "n", playbackUrl: url, renditions: [] }, src))).toEqual({ kind: "objects", rooms: ["s1"], inboxes: [] });
  });

  it("sends media events to the owner's inbox, the owner's videos and the room, whichever are named", () => {
    const ready = (data: Partial<{ ownerId: string; roomId: string; streamId: string }>) =>
      routeFor(makeEvent("media.ready", { mediaId: "m", playbackUrl: url, durationS: 1, ...data }, src));
    expect(ready({ ownerId: "u1", roomId: "r1" })).toEqual({ kind: "objects", rooms: ["r1"], inboxes: ["u1"], videos: ["u1"] });
    expect(ready({ ownerId: "u1" })).toEqual({ kind: "objects", rooms: [], inboxes: ["u1"], videos: ["u1"] });
    expect(ready({ streamId: "s1" })).toEqual({ kind: "objects", rooms: ["s1"], inboxes: [], videos: [] });
    // A recording of a Streams API stream concerns the stream's object (its recordings) and the owner's videos.
    expect(ready({ ownerId: "u1", streamId: "str_0123456789abcdef" })).toEqual({ kind: "objects", rooms: ["str_0123456789abcdef"], inboxes: ["u1"], streams: ["str_0123456789abcdef"], videos: ["u1"] });
    expect(ready({})).toMatchObject({ kind: "ignored" });
    expect(routeFor(makeEvent("media.failed", { mediaId: "m", ownerId: "u2", reason: "corrupt" }, src))).toEqual({ kind: "objects", rooms: [], inboxes: ["u2"], videos: ["u2"] });
    // playable: the owner's video record only (the inbox hears progress, ready and failed)
    const playable = { mediaId: "m", ownerId: "u3", playbackUrl: url, masterKey: "vod/m/master.m3u8", renditions: [] };
    expect(routeFor(makeEvent("media.playable", playable, src))).toEqual({ kind: "objects", rooms: [], inboxes: [], videos: ["u3"] });
  });

  it("sends notification.requested to the user's inbox", () => {
    expect(routeFor(makeEvent("notification.requested", { notificationId: "n", userId: "u3", title: "t" }, src))).toEqual({ kind: "notification", userId: "u3" });
  });

  it("has a decision for every event type, with a reason when it ignores one", () => {
    const samples: Record<string, unknown> = {
      "media.uploaded": { mediaId: "m", ownerId: "u", key: "k" },
      "chat.message": { roomId: "r", messageId: 1, userId: "u", text: "hi", at: 1 },
      "presence.update": { roomId: "r", userId: "u", change: "join", connections: 1 },
      "notification.sent": { notificationId: "n", userId: "u", channel: "socket", outcome: "delivered", connections: 1 },
      "notification.email": { emailId: "e1", userId: "u", to: "u@example.test", notifications: [{ notificationId: "n", kind: "k", title: "t", at: 1 }], unsubscribeUrl: "https://edge.test/u" },
      "transcription.complete": { mediaId: "m", language: "en" },
    };
    for (const type of eventTypes) {
      if (!(type in samples)) continue;
      const route = routeFor(makeEvent(type, samples[type] as never, src) as Envelope);
      expect(route.kind, type).toBe("ignored");
      expect(route.kind === "ignored" && route.reason.length > 0).toBe(true);
    }
  });
});

describe("sentEventId", () => {
  it("is a valid, stable event id per user and notification", async () => {
    const a = await sentEventId("u1", "n1");
    expect(a).toMatch(/^evt_sent_[A-Za-z0-9_-]{32}$/);
    expect(await sentEventId("u1", "n1")).toBe(a);
    expect(await sentEventId("u1", "n2")).not.toBe(a);
    expect(await sentEventId("u2", "n1")).not.toBe(a);
  });
});
