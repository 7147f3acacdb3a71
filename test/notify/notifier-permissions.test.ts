// The notifier's NATS user (media-node/src/bus/nats-permissions.ts) on a real nats-server with the shipped
// permissions: it may publish its answers (notification.sent) and nothing else, and read only its own replies.
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { utf8 } from "../../shared/encoding.ts";
import { type Envelope, makeEvent } from "../../shared/envelope.ts";
import { busConfig } from "../../media-node/src/bus/config.ts";
import { inboxPrefix } from "../../media-node/src/bus/nats-permissions.ts";
import { ensureEventStreams } from "../../media-node/src/bus/streams.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";

describe("the notifier's NATS credentials", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await startNats();
    nc = await connect(nats.options("notifier", { maxReconnectAttempts: 0, inboxPrefix: inboxPrefix("notifier") }));
    await ensureEventStreams(await nc.jetstreamManager(), busConfig());
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });
  const publish = (e: Envelope) =>
    nc
      .jetstream()
      .publish(e.type, utf8(JSON.stringify(e)), { msgID: e.id, timeout: 2000 })
      .then(
        () => "stored",
        (error: Error) => error.message,
      );

  it("publish notification.sent, and no other event", async () => {
    const sent = makeEvent("notification.sent", { notificationId: "n1", userId: "u1", channel: "email", outcome: "delivered", emailId: "eml_1" }, { source: "notifier", subject: "user/u1" });
    expect(await publish(sent)).toBe("stored");
    const forged = makeEvent("notification.requested", { notificationId: "n2", userId: "u1", title: "hi" }, { source: "notifier", subject: "user/u1" });
    expect(await publish(forged)).toMatch(/permissions[ _]violation/i);
    const email = makeEvent("notification.email", { emailId: "eml_2", userId: "u1", to: "u1@example.test", notifications: [{ notificationId: "n3", kind: "k", title: "t", at: 1 }], unsubscribeUrl: "https://edge.test/u" }, { source: "notifier", subject: "user/u1" });
    expect(await publish(email)).toMatch(/permissions[ _]violation/i);
  });
});
