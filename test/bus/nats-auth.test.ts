// The bus is authenticated and every client is held to its role, with real processes: a nats-server started with
// the shipped authorization block (media-node/src/bus/nats-permissions.ts), the NATS -> HTTP bridge as its own
// process, and a signed receiver standing in for the edge. A client without credentials gets no connection; a
// media node's credentials cannot put a notification.requested (or anything it does not emit) on the bus; the
// bridge's credentials cannot publish events. What is refused never reaches the edge, while the same pipeline
// delivers what the roles allow.

import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Envelope, makeEvent } from "../../shared/envelope.ts";
import { utf8 } from "../../shared/encoding.ts";
import { inboxPrefix, type NatsRole } from "../../media-node/src/bus/nats-permissions.ts";
import { type NatsToHttpBridgeProcess, startNatsToHttpBridge } from "../helpers/bridges.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";
import { waitFor } from "../helpers/wait.ts";
import { type Receiver, startReceiver } from "./receiver.ts";

// A well-formed event, so what refuses it here is the bus's permissions alone (a `javascript:` link would not even
// pass the event schema, which shared/urls.test.ts and the edge's ingress tests cover).
const notification = () =>
  makeEvent("notification.requested", { notificationId: `n_${Math.random()}`, userId: "u1", title: "click me", url: "https://evil.example/click" }, { source: "media-node/evil", subject: "user/u1" });
const live = (streamId: string) =>
  makeEvent("stream.live", { streamId, nodeId: "n1", playbackUrl: `https://cdn.example/${streamId}.m3u8`, renditions: [] }, { source: "media-node/n1", subject: `stream/${streamId}` });

describe("NATS authorization (real nats-server with the shipped permissions)", () => {
  let nats: NatsServer;
  let receiver: Receiver;
  let bridge: NatsToHttpBridgeProcess;
  const conns: NatsConnection[] = [];
  const as = async (role: NatsRole) => {
    const nc = await connect(nats.options(role, { maxReconnectAttempts: 0, inboxPrefix: inboxPrefix(role) }));
    conns.push(nc);
    return nc;
  };
  /** js.publish as `nc`; resolves to "stored" or the refusal's message */
  const publish = async (nc: NatsConnection, e: Envelope) =>
    nc
      .jetstream()
      .publish(e.type, utf8(JSON.stringify(e)), { msgID: e.id, timeout: 2000 })
      .then(
        () => "stored",
        (error: Error) => error.message,
      );

  beforeAll(async () => {
    nats = await startNats();
    receiver = await startReceiver(await freePort());
    bridge = await startNatsToHttpBridge({ nats, edgeUrl: receiver.url, env: { BRIDGE_BATCH_LINGER_MS: "0" } });
  });
  afterAll(async () => {
    for (const nc of conns) await nc.close().catch(() => undefined);
    await bridge?.stop();
    await receiver?.close();
    await nats?.stop();
  });

  it("refuses a client without credentials, or with a wrong password", async () => {
    await expect(connect({ servers: nats.url, maxReconnectAttempts: 0 })).rejects.toThrow(/authorization/i);
    await expect(connect({ servers: nats.url, user: "media-node", pass: "not-the-password", maxReconnectAttempts: 0 })).rejects.toThrow(/authorization/i);
  });

  it("a media node's credentials cannot publish notification.requested; nothing is stored or reaches the edge", async () => {
    const node = await as("media-node");
    const forged = notification();
    expect(await publish(node, forged)).toMatch(/permissions[ _]violation/i);
    // The same credentials publish what a media node emits, and the bridge delivers it: the pipeline is live.
    const ok = live("s-auth-1");
    expect(await publish(node, ok)).toBe("stored");
    await waitFor("the allowed event at the edge", () => receiver.accepted.includes(ok.id));
    expect(receiver.deliveries.has(forged.id)).toBe(false);
    const ops = await as("ops");
    const jsm = await ops.jetstreamManager();
    await expect(jsm.streams.getMessage("EVENTS", { last_by_subj: "notification.requested" })).rejects.toThrow(/no message found/i);
  });

  it("a media node may not read the bus, nor the replies meant for other clients (only its own inbox)", async () => {
    for (const subject of ["notification.>", "_INBOX.>", `${inboxPrefix("nats-to-http")}.>`]) {
      const node = await connect(nats.options("media-node", { maxReconnectAttempts: 0 }));
      conns.push(node);
      const refused = new Promise<string>((resolve) => {
        void (async () => {
          for await (const s of node.status()) if (s.type === "error") resolve(String(s.data));
        })();
      });
      node.subscribe(subject);
      await node.flush().catch(() => undefined);
      expect(await refused).toMatch(/permissions[ _]violation/i);
    }
  });

  it("the NATS -> HTTP bridge's credentials only consume: they cannot publish events", async () => {
    const asBridge = await as("nats-to-http");
    expect(await publish(asBridge, live("s-auth-2"))).toMatch(/permissions[ _]violation/i);
    expect(await publish(asBridge, notification())).toMatch(/permissions[ _]violation/i);
  });

  it("the HTTP -> NATS bridge's credentials publish only what the edge may send", async () => {
    const h2n = await as("http-to-nats");
    expect(await publish(h2n, live("s-auth-3"))).toMatch(/permissions[ _]violation/i);
    expect(await publish(h2n, makeEvent("chat.message", { roomId: "lobby", messageId: 1, userId: "u1", text: "hi", at: Date.now() }, { source: "edge", subject: "room/lobby" }))).toBe("stored");
  });

  it("edge-only types are never fetched by the bridge (their own stream), whatever their source says", async () => {
    const ops = await as("ops");
    const skippedBefore = await bridge.metric("pulsecast_bridge_skipped_total");
    // A chat message claiming a media-side source: the source check would let it through, the stream layout does not.
    const chat = makeEvent("chat.message", { roomId: "lobby", messageId: 2, userId: "u1", text: "loop?", at: Date.now() }, { source: "media-node/n1", subject: "room/lobby" });
    expect(await publish(ops, chat)).toBe("stored");
    const after = live("s-auth-4");
    expect(await publish(ops, after)).toBe("stored");
    await waitFor("the later event at the edge", () => receiver.accepted.includes(after.id));
    expect(receiver.deliveries.has(chat.id)).toBe(false);
    expect(await bridge.metric("pulsecast_bridge_skipped_total")).toBe(skippedBefore);
    const jsm = await ops.jetstreamManager();
    expect((await jsm.streams.getMessage("EDGE_EVENTS", { last_by_subj: "chat.message" })).json<Envelope>().id).toBe(chat.id);
  });
});
