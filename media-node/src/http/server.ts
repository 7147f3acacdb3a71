// The media node's HTTP listeners. The public one serves /media/<key> with the fs storage driver (the stored
// playlists and segments, served like a CDN would); the operations one, on loopback by default, serves /healthz
// (readiness) and /metrics (Prometheus). Health answers name the failing check but never say why: the reason
// (a folder path, a server address) goes to the log, not to whoever asked.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { HealthReport } from "../health/health.ts";
import type { Logger } from "../log.ts";

export interface HttpRoutes {
  health?: () => Promise<HealthReport>;
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /** true while the node drains: /healthz answers 503 `draining` (load balancers stop sending broadcasters) */
  draining?: () => boolean;
  /** POST /drain: start draining (operations listener only) */
  drain?: () => void;
  /** answers /media/... requests; resolves false when it does not own the path */
  media?: ((req: IncomingMessage, res: ServerResponse) => Promise<boolean>) | undefined;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

export function createHttpServer(routes: HttpRoutes, log: Logger): Server {
  return createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      log.error("http handler failed", { url: req.url?.slice(0, 200), error });
      if (!res.headersSent) json(res, 500, { error: "internal error" });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz" && routes.health) {
      const report = await routes.health();
      const checks = Object.fromEntries(Object.entries(report.checks).map(([name, c]) => [name, { ok: c.ok, ms: c.ms }]));
      const failing = Object.entries(report.checks).filter(([, c]) => !c.ok);
      if (failing.length > 0) log.warn("health check failing", Object.fromEntries(failing.map(([name, c]) => [name, c.error ?? "failed"])));
      const draining = routes.draining?.() ?? false;
      return json(res, report.ok && !draining ? 200 : 503, { status: draining ? "draining" : report.ok ? "ready" : "not ready", ok: report.ok && !draining, checks });
    }
    if (path === "/drain" && routes.drain) {
      if (req.method !== "POST") return json(res, 405, { error: "POST /drain starts draining" });
      routes.drain();
      return json(res, 202, { status: "draining" });
    }
    if (path === "/metrics" && routes.metrics) {
      const { contentType, body } = await routes.metrics();
      res.writeHead(200, { "content-type": contentType, "cache-control": "no-store" });
      res.end(body);
      return;
    }
    if (routes.media && (await routes.media(req, res))) return;
    json(res, 404, { error: `no route for ${req.method} ${path?.slice(0, 200)}` });
  }
}

/** Listens and resolves with the bound port (0 picks a free one); rejects on EADDRINUSE instead of exiting. */
export function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
