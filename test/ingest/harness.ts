// A real RtmpIngest (real node-media-server on a free port) without the rest of the media node, for tests of the
// RTMP port itself: connection limits and pull credentials. One at a time per process (node-media-server keeps
// its config in a module singleton); stop() before starting the next.

import { mkdtemp, rm } from "node:fs/promises";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AddressInfo, connect, createConnection, createServer, type Socket } from "node:net";
import { createAuthorizer } from "../../media-node/src/ingest/authorize.ts";
import { type AuthorizedPublish, RtmpIngest, type RtmpIngestEvents } from "../../media-node/src/ingest/rtmp-server.ts";
import type { IngestLimits } from "../../media-node/src/settings/ingest.ts";
import { createLogger, type LogFields } from "../../media-node/src/log.ts";
import { mintPublishToken } from "../../shared/tokens/publish-token.ts";
import { TEST_SECRETS } from "../helpers/edge.ts";
import { freePort } from "../helpers/ports.ts";

export type ConnectionRefused = RtmpIngestEvents["connectionRefused"][0];

export interface IngestHarness {
  ingest: RtmpIngest;
  port: number;
  logs: (LogFields & { level: string; msg: string })[];
  /** every connectionRefused event so far */
  refusals: ConnectionRefused[];
  /** every accepted publish so far */
  publishes: AuthorizedPublish[];
  token(sid: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startIngest(limits: Partial<IngestLimits>, host = "127.0.0.1", rtmps?: { port: number; cert: string; key: string }): Promise<IngestHarness> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "pulsecast-ingest-"));
  const logs: IngestHarness["logs"] = [];
  const log = createLogger({ level: "debug", sink: (_line, record) => void logs.push(record) });
  const ingest = new RtmpIngest({
    host,
    port,
    storeDir: dir,
    authorize: createAuthorizer({ apps: ["live"], secret: TEST_SECRETS.PUBLISH_TOKEN_SECRET }),
    log,
    limits,
    rtmps,
  });
  const refusals: ConnectionRefused[] = [];
  const publishes: AuthorizedPublish[] = [];
  ingest.on("connectionRefused", (r) => void refusals.push(r));
  ingest.on("publish", (p) => void publishes.push(p));
  await ingest.start();
  return {
    ingest,
    port,
    logs,
    refusals,
    publishes,
    token: (sid) => mintPublishToken(TEST_SECRETS.PUBLISH_TOKEN_SECRET, { sid, app: "live", scope: "publish", exp: Math.floor(Date.now() / 1000) + 600, sub: "broadcaster-1" }),
    async stop() {
      await ingest.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The address tests connect from to stand for another host. The node trusts only 127.0.0.1 and ::1 (where its own
 * pulls come from); any other address, this one included, gets the caps and refusals a remote broadcaster gets.
 * It is a loopback address, so the tests' traffic never leaves the machine.
 */
export const OUTSIDE_ADDRESS = "127.0.0.2";

/**
 * A TCP relay on 127.0.0.1 whose outgoing connections come from `fromAddress`: a client that cannot choose its
 * source address (FFmpeg) reaches `targetPort` as if from another host.
 */
export async function relayFrom(fromAddress: string, targetPort: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: "127.0.0.1", port: targetPort, localAddress: fromAddress });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A client socket that is connected (and whose 'close' is being watched) when the promise resolves. */
export interface OpenSocket {
  socket: Socket;
  closed: Promise<number>;
}

/** Connects to `host:port` (from `localAddress` when given); `closed` resolves with the ms from connect to close. */
export function openSocket(host: string, port: number, localAddress?: string): Promise<OpenSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, ...(localAddress ? { localAddress } : {}) });
    let connectedAt = 0;
    const closed = new Promise<number>((r) => socket.once("close", () => r(Date.now() - connectedAt)));
    socket.on("error", () => {});
    // read (and drop) whatever the server sends, or its FIN would wait behind unread bytes and 'close' never come
    socket.resume();
    socket.once("connect", () => {
      connectedAt = Date.now();
      resolve({ socket, closed });
    });
    socket.once("close", () => {
      if (!connectedAt) reject(new Error(`could not connect to ${host}:${port}`));
    });
  });
}

/** Resolves when every promise did, or rejects with `what` and how many were still pending at the deadline. */
export async function allBy<T>(what: string, promises: Promise<T>[], deadlineMs: number): Promise<T[]> {
  let settled = 0;
  const tracked = promises.map((p) => p.finally(() => settled++));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: ${promises.length - settled} of ${promises.length} still pending after ${deadlineMs} ms`)), deadlineMs);
  });
  try {
    return await Promise.race([Promise.all(tracked), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
