// Prometheus metrics of the NATS -> HTTP bridge, served on METRICS_PORT at /metrics (and /healthz).

import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export function createBridgeMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    delivered: new Counter({ name: "pulsecast_bridge_delivered_total", help: "Events the edge accepted (2xx), by type", labelNames: ["type"], registers }),
    retried: new Counter({ name: "pulsecast_bridge_retried_total", help: "Failed delivery attempts that will be retried, by cause", labelNames: ["cause"], registers }),
    deadLettered: new Counter({ name: "pulsecast_bridge_dead_lettered_total", help: "Events moved to the dead-letter stream, by type", labelNames: ["type"], registers }),
    skipped: new Counter({ name: "pulsecast_bridge_skipped_total", help: "Events acked without posting (from the edge itself)", registers }),
    lag: new Gauge({ name: "pulsecast_bridge_lag_events", help: "Events in the stream not yet delivered to any replica (consumer num_pending)", registers }),
    inFlight: new Gauge({ name: "pulsecast_bridge_in_flight_events", help: "Events this replica holds (posting or waiting to retry)", registers }),
    batchSize: new Histogram({
      name: "pulsecast_bridge_batch_size_events",
      help: "Events per POST to the edge (1 = single-event form)",
      buckets: [1, 2, 5, 10, 25, 50, 75, 100],
      registers,
    }),
    heartbeats: new Counter({ name: "pulsecast_bridge_heartbeats_forwarded_total", help: "Media nodes' heartbeats forwarded to the edge's fleet view", registers }),
    batchesSplit: new Counter({ name: "pulsecast_bridge_batches_split_total", help: "Batches the edge refused whole (permanent 4xx, no per-event results), then sent one event at a time", registers }),
    latency: new Histogram({
      name: "pulsecast_bridge_delivery_latency_seconds",
      help: "From the event being stored in JetStream to the edge's 2xx",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    }),
  };
}

export type BridgeMetrics = ReturnType<typeof createBridgeMetrics>;

/** GET /metrics and GET /healthz (200 while `healthy()`, else 503). Resolves with the bound port. */
export async function serveMetrics(registry: Registry, host: string, port: number, healthy: () => boolean): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.method === "GET" && req.url === "/metrics") {
      registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
        (error: Error) => res.writeHead(500).end(error.message),
      );
    } else if (req.method === "GET" && req.url === "/healthz") {
      const ok = healthy();
      res.writeHead(ok ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify({ ok }));
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics or /healthz\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  const address = server.address();
  return { server, port: typeof address === "object" && address ? address.port : port };
}
