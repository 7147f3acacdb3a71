// Edge -> media side, with every real part: a notification.requested reaches the user's inbox at the edge,
// whose answer (notification.sent) leaves through the edge's outbox (a Durable Object with alarm retries),
// is POSTed signed to the HTTP -> NATS bridge process and lands in JetStream. The bridge starts only after the
// edge has tried: the outbox must keep the event and deliver it once the media side is back.

import { connect } from "nats";
import { afterEach, describe, expect, it } from "vitest";
import { type Envelope, makeEvent } from "../../shared/envelope.ts";
import { signWebhook } from "../../shared/signing/webhooks.ts";
import { startHttpToNatsBridge } from "../helpers/bridges.ts";
import { startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { startNats } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";
import { waitFor } from "../helpers/wait.ts";

describe("edge -> HTTP->NATS bridge -> JetStream", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  it("the edge's outbox delivers its events once the bridge comes up, each stored once", async () => {
    const bridgePort = await freePort();
    const [nats, edge] = await Promise.all([startNats(), startEdge({ BRIDGE_URL: `http://127.0.0.1:${bridgePort}/events` })]);
    cleanups.push(() => nats.stop(), () => edge.stop());

    // Three notification requests for one user, delivered to the edge like the NATS->HTTP bridge does.
    const requests = [1, 2, 3].map((n) =>
      makeEvent("notification.requested", { notificationId: `ntf_${n}`, userId: "bus-user", title: `hello ${n}` }, { source: "media-node/test", subject: "user/bus-user" }),
    );
    for (const r of requests) {
      const body = JSON.stringify(r);
      const res = await fetch(`${edge.url}/hooks/events`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(await signWebhook(TEST_SECRETS.EDGE_INGRESS_SECRET, r.id, body)) },
        body,
      });
      expect(res.status).toBe(200);
    }

    // The media side is down: the answers wait in the edge's outbox. Now it comes up.
    const bridge = await startHttpToNatsBridge({ nats, env: { HTTP_TO_NATS_PORT: String(bridgePort) } });
    cleanups.push(() => bridge.stop());
    const nc = await connect(nats.options());
    cleanups.push(() => nc.close());
    const jsm = await nc.jetstreamManager();
    // notification.sent only ever comes from the edge: it is kept in EDGE_EVENTS.
    await waitFor("three notification.sent in JetStream", async () => (await jsm.streams.info("EDGE_EVENTS")).state.messages >= 3, 90_000, 250);

    const { state } = await jsm.streams.info("EDGE_EVENTS");
    const stored: Envelope[] = [];
    for (let seq = state.first_seq; seq <= state.last_seq; seq++) stored.push((await jsm.streams.getMessage("EDGE_EVENTS", { seq })).json<Envelope>());
    expect(stored).toHaveLength(3);
    expect(stored.every((e) => e.type === "notification.sent" && e.source === "edge")).toBe(true);
    expect(new Set(stored.map((e) => (e.data as { notificationId: string }).notificationId))).toEqual(new Set(["ntf_1", "ntf_2", "ntf_3"]));
  }, 180_000);
});
