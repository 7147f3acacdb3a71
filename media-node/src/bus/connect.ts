// One NATS connection per process, reconnecting forever: a media node or bridge outlives any nats-server
// restart, and JetStream calls made while disconnected fail (and are retried by their callers).

import { connect, type NatsConnection } from "nats";

export interface ConnectOptions {
  /** shows up in `nats server report connections` */
  name: string;
  /** called on every connection status change, for logs */
  onStatus?: (status: string, detail?: string) => void;
}

export async function connectNats(urls: string, opts: ConnectOptions): Promise<NatsConnection> {
  const nc = await connect({
    servers: urls.split(",").map((s) => s.trim()),
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    // The first connect also waits for a server that is not up yet (a node started before NATS).
    waitOnFirstConnect: true,
    pingInterval: 5_000,
  });
  if (opts.onStatus) {
    const onStatus = opts.onStatus;
    void (async () => {
      for await (const s of nc.status()) onStatus(s.type, typeof s.data === "string" ? s.data : undefined);
    })();
  }
  return nc;
}
