import { connect } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EdgeServer, startEdge } from "./edge.ts";
import { type NatsServer, startNats } from "./nats.ts";

// The harness every cross-part test stands on: real wrangler dev and real nats-server, started and stopped here.
describe("test harness", () => {
  let edge: EdgeServer;
  let nats: NatsServer;
  beforeAll(async () => {
    [edge, nats] = await Promise.all([startEdge(), startNats()]);
  });
  afterAll(async () => {
    await Promise.all([edge?.stop(), nats?.stop()]);
  });

  it("serves the edge under wrangler dev on 127.0.0.1", async () => {
    const res = await fetch(`${edge.url}/healthz`);
    expect(res.status).toBe(200);
  });

  it("runs a JetStream-enabled nats-server that survives a SIGKILL restart", async () => {
    let nc = await connect(nats.options());
    await (await nc.jetstreamManager()).streams.add({ name: "HARNESS", subjects: ["harness.>"] });
    await nc.close();
    await nats.restart({ hard: true });
    nc = await connect(nats.options());
    const info = await (await nc.jetstreamManager()).streams.info("HARNESS");
    expect(info.config.name).toBe("HARNESS");
    await nc.close();
  });
});
