// node:http front of the HTTP -> NATS bridge: routing, the body size limits (one event, or a batch by its
// content type) and JSON replies around handleEvent / handleBatch.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { isBatchRequest } from "../../../../shared/batch.ts";
import { handleBatch } from "./batch-handler.ts";
import { type HandlerDeps, handleEvent, type Reply } from "./handler.ts";

export interface ServerOptions extends HandlerDeps {
  maxBodyBytes: number;
  maxBatchBytes: number;
  healthy: () => boolean;
}

function send(res: ServerResponse, reply: Reply) {
  res.writeHead(reply.status, { "content-type": "application/json", ...reply.headers }).end(JSON.stringify(reply.body));
}

/** Reads the body up to `limit` bytes; null when it is larger (the rest is not read). */
function readBody(req: IncomingMessage, limit: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > limit) return resolve(null);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.pause();
        resolve(null);
      } else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

export function createHttpToNatsServer(opts: ServerOptions): Server {
  return createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz" && req.method === "GET") {
      const ok = opts.healthy();
      return send(res, { status: ok ? 200 : 503, body: { ok } });
    }
    if (path !== "/events") return send(res, { status: 404, body: { ok: false, error: "not-found", message: "POST /events" } });
    if (req.method !== "POST") return send(res, { status: 405, body: { ok: false, error: "method-not-allowed", message: "POST /events" }, headers: { allow: "POST" } });
    const batch = isBatchRequest(req.headers["content-type"]);
    const limit = batch ? opts.maxBatchBytes : opts.maxBodyBytes;
    readBody(req, limit).then(
      async (body) => {
        if (body === null) {
          // The unread rest of the body would be parsed as the next request: close this connection.
          res.setHeader("connection", "close");
          return send(res, { status: 413, body: { ok: false, error: "too-large", message: `${batch ? "batch " : ""}body larger than ${limit} bytes` } });
        }
        send(res, await (batch ? handleBatch : handleEvent)({ headers: req.headers, body }, opts));
      },
      (error: Error) => send(res, { status: 400, body: { ok: false, error: "bad-request", message: error.message } }),
    ).catch((error: Error) => {
      if (!res.headersSent) send(res, { status: 500, body: { ok: false, error: "internal", message: error.message } });
    });
  });
}
