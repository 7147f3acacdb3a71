import { describe, expect, it } from "vitest";
import { readNatsToHttpConfig } from "../bridges/nats-to-http/config.ts";
import { readHttpToNatsConfig } from "../bridges/http-to-nats/config.ts";
import { readBusConfig } from "./config.ts";
import { ConfigError } from "../settings/processes.ts";

describe("bus and bridge settings", () => {
  it("uses the documented defaults", () => {
    const creds = { NATS_USER: "media-node", NATS_PASSWORD: "a-password-of-16-chars" };
    const bus = readBusConfig(creds);
    expect(bus.natsUrl).toBe("nats://127.0.0.1:4222");
    expect(bus.stream).toBe("EVENTS");
    const n2h = readNatsToHttpConfig({ ...creds, EDGE_INGRESS_SECRET: "a-secret-of-16-chars-or-more" });
    expect(n2h.edgeUrl).toBe("http://127.0.0.1:8787/hooks/events");
    expect(n2h.metricsPort).toBe(8789);
    expect(n2h.retryStatusSet).toEqual(new Set([401, 403, 408, 425, 429]));
    const h2n = readHttpToNatsConfig({ ...creds, BRIDGE_INGRESS_SECRET: "a-secret-of-16-chars-or-more" });
    expect(h2n.port).toBe(8788);
    expect(h2n.host).toBe("127.0.0.1");
  });

  it("refuses to start without a secret, naming the variable", () => {
    expect(() => readNatsToHttpConfig({})).toThrow(ConfigError);
    expect(() => readNatsToHttpConfig({})).toThrow(/EDGE_INGRESS_SECRET is required/);
    expect(() => readHttpToNatsConfig({})).toThrow(/BRIDGE_INGRESS_SECRET is required/);
  });

  it("reports every bad value at once, with its variable", () => {
    let message = "";
    try {
      readNatsToHttpConfig({ EDGE_INGRESS_SECRET: "short", NATS_URL: "http://x", BRIDGE_CONCURRENCY: "lots", BRIDGE_RETRY_STATUSES: "408,500" });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/EDGE_INGRESS_SECRET=.*at least 16/);
    expect(message).toMatch(/NATS_URL=.*protocol/);
    expect(message).toMatch(/BRIDGE_CONCURRENCY=.*whole number/);
    expect(message).toMatch(/BRIDGE_RETRY_STATUSES=.*"500"/);
  });

  it("rejects a request timeout that the ack wait would cut short", () => {
    expect(() => readNatsToHttpConfig({ NATS_TOKEN: "a-token-of-16-chars-or-more", EDGE_INGRESS_SECRET: "a-secret-of-16-chars-or-more", BRIDGE_ACK_WAIT_MS: "5000", BRIDGE_REQUEST_TIMEOUT_MS: "5000" })).toThrow(
      /must be below BRIDGE_ACK_WAIT_MS/,
    );
  });

  it("accepts several secrets for rotation", () => {
    const cfg = readHttpToNatsConfig({ NATS_TOKEN: "a-token-of-16-chars-or-more", BRIDGE_INGRESS_SECRET: "new-secret-0123456789, old-secret-0123456789" });
    expect(cfg.secrets).toEqual(["new-secret-0123456789", "old-secret-0123456789"]);
  });
});
