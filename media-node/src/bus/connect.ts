// One NATS connection per process, authenticated, reconnecting forever: a media node or bridge outlives any
// nats-server restart, and JetStream calls made while disconnected fail (and are retried by their callers).
//
// Credentials come from the settings (NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_CREDS_FILE or
// NATS_NKEY_SEED_FILE), never from the URL: the client ignores `user:pass@` there. TLS is on when a CA is given.

import { readFileSync } from "node:fs";
import { type ConnectionOptions, connect, credsAuthenticator, type NatsConnection, nkeyAuthenticator } from "nats";
import type { NatsConnectionConfig } from "../settings/nats.ts";

export interface ConnectOptions {
  /** shows up in `nats server report connections` */
  name: string;
  /** where this connection's replies arrive: the role's prefix, the only inbox its NATS user may subscribe to */
  inboxPrefix: string;
  /** called on every connection status change, for logs */
  onStatus?: (status: string, detail?: string) => void;
}

/** The client options for a connection group: servers, the one credential, TLS. Pure apart from reading key files. */
export function natsConnectionOptions(cfg: NatsConnectionConfig): ConnectionOptions {
  const options: ConnectionOptions = { servers: cfg.natsUrl.split(",").map((s) => s.trim()).filter(Boolean) };
  if (cfg.natsUser) Object.assign(options, { user: cfg.natsUser, pass: cfg.natsPassword });
  if (cfg.natsToken) options.token = cfg.natsToken;
  if (cfg.natsCredsFile) options.authenticator = credsAuthenticator(readFileSync(cfg.natsCredsFile));
  if (cfg.natsNkeySeedFile) options.authenticator = nkeyAuthenticator(new TextEncoder().encode(readFileSync(cfg.natsNkeySeedFile, "utf8").trim()));
  if (cfg.natsTlsCaFile || cfg.natsTlsCertFile) {
    options.tls = {
      ...(cfg.natsTlsCaFile ? { caFile: cfg.natsTlsCaFile } : {}),
      ...(cfg.natsTlsCertFile ? { certFile: cfg.natsTlsCertFile, keyFile: cfg.natsTlsKeyFile } : {}),
    };
  }
  return options;
}

export async function connectNats(cfg: NatsConnectionConfig, opts: ConnectOptions): Promise<NatsConnection> {
  const nc = await connect({
    ...natsConnectionOptions(cfg),
    name: opts.name,
    inboxPrefix: opts.inboxPrefix,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    // The first connect also waits for a server that is not up yet (a node started before NATS).
    waitOnFirstConnect: true,
    pingInterval: 5_000,
    // Without this the client builds an Error (a captured stack) for every request, JetStream publishes included,
    // only to add the caller's stack to a timeout: a large share of a busy publisher's CPU. A timeout is still a
    // TIMEOUT error; it only loses that stack.
    noAsyncTraces: true,
  });
  if (opts.onStatus) {
    const onStatus = opts.onStatus;
    void (async () => {
      for await (const s of nc.status()) onStatus(s.type, typeof s.data === "string" ? s.data : undefined);
    })();
  }
  return nc;
}
