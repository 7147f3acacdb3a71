// NATS settings shared by every Node process: where the servers are, how a process proves who it is, and the
// JetStream streams it declares. Each process reads the connection group; which streams and outbox settings it
// reads depends on what it does (see processes.ts).

import { int, secret, text, type SettingsOf, url } from "../../../shared/settings/settings.ts";

/** Connection and credentials. A process must use exactly one way to authenticate; TLS is optional on top. */
export const natsConnectionSettings = {
  natsUrl: url("NATS_URL", "nats://127.0.0.1:4222", "NATS server(s), comma-separated (every process reconnects on its own, to any of them); credentials go in the variables below, never in the URL", {
    protocols: ["nats:", "tls:"],
    many: true,
  }),
  natsUser: text("NATS_USER", undefined, "user name, with NATS_PASSWORD", { optional: true, pattern: /^[A-Za-z0-9_.@-]{1,128}$/ }),
  natsPassword: secret("NATS_PASSWORD", "password of NATS_USER", { optional: true }),
  natsToken: secret("NATS_TOKEN", "token, instead of a user and password", { optional: true }),
  natsCredsFile: text("NATS_CREDS_FILE", undefined, "credentials file (JWT and NKey seed), instead of the above", { optional: true }),
  natsNkeySeedFile: text("NATS_NKEY_SEED_FILE", undefined, "file holding an NKey user seed (SU...), instead of the above", { optional: true }),
  natsTlsCaFile: text("NATS_TLS_CA_FILE", undefined, "PEM CA file that signed the server's certificate; turns TLS on", { optional: true }),
  natsTlsCertFile: text("NATS_TLS_CERT_FILE", undefined, "PEM client certificate, when the server asks for one (with NATS_TLS_KEY_FILE)", { optional: true }),
  natsTlsKeyFile: text("NATS_TLS_KEY_FILE", undefined, "PEM private key of NATS_TLS_CERT_FILE", { optional: true }),
} as const;

export type NatsConnectionConfig = SettingsOf<typeof natsConnectionSettings>;

/** JetStream streams every process that declares them agrees on. */
export const natsStreamSettings = {
  stream: text("NATS_STREAM", "EVENTS", "JetStream stream of the events the edge takes (subjects = event types)", { pattern: /^[A-Za-z0-9_-]{1,64}$/ }),
  edgeStream: text("NATS_EDGE_STREAM", "EDGE_EVENTS", "JetStream stream of the types only the edge emits, kept apart so the NATS -> HTTP bridge never fetches them", { pattern: /^[A-Za-z0-9_-]{1,64}$/ }),
  jobStream: text("NATS_VOD_JOB_STREAM", "VOD_JOBS", "JetStream work-queue stream of finished uploads waiting for a media node (`media.uploaded`); an ack removes a job", { pattern: /^[A-Za-z0-9_-]{1,64}$/ }),
  deadLetterStream: text("NATS_DEAD_LETTER_STREAM", "DEADLETTER", "JetStream stream of events the edge refused for good (`deadletter.<type>`)", { pattern: /^[A-Za-z0-9_-]{1,64}$/ }),
  duplicateWindowS: int("NATS_DUPLICATE_WINDOW_S", 3600, "seconds JetStream remembers event ids to drop re-publishes (covers an outbox replaying after a crash)", { min: 1, max: 7 * 86400 }),
  maxAgeS: int("NATS_MAX_AGE_S", 7 * 86400, "seconds events stay in the streams", { min: 60 }),
  replicas: int("NATS_REPLICAS", 1, "copies of every stream and KV bucket this process declares: 1 on a single server, 3 on a 3-server JetStream cluster (every process of a deployment sets the same)", { min: 1, max: 5 }),
  publishTimeoutMs: int("NATS_PUBLISH_TIMEOUT_MS", 5000, "ms to wait for JetStream to confirm one stored event", { min: 100, max: 120_000 }),
} as const;

/** The media node's local outbox: events wait here, fsync'd, until JetStream has stored them. */
export const outboxSettings = {
  outboxDir: text("OUTBOX_DIR", "var/outbox", "folder of the media node's event outbox"),
  outboxMaxBytes: int("OUTBOX_MAX_BYTES", 256 * 1024 * 1024, "largest outbox backlog on disk, bytes; publish() refuses new events beyond it", { min: 1024 * 1024 }),
  outboxPublishWindow: int("OUTBOX_PUBLISH_WINDOW", 64, "outbox publishes in flight to JetStream at once, in order (1 = strict order even across a failed publish)", { min: 1, max: 4096 }),
} as const;

/**
 * Cross-setting checks of the connection group: exactly one way to authenticate (a bus without credentials is
 * refused here, not discovered as an authorization error later), TLS client certificate and key together, and no
 * credentials inside NATS_URL (the client would ignore them, and they would end up in logs).
 */
export function natsConnectionProblems(c: NatsConnectionConfig): string[] {
  const problems: string[] = [];
  const ways = [c.natsUser || c.natsPassword ? "NATS_USER/NATS_PASSWORD" : "", c.natsToken ? "NATS_TOKEN" : "", c.natsCredsFile ? "NATS_CREDS_FILE" : "", c.natsNkeySeedFile ? "NATS_NKEY_SEED_FILE" : ""].filter(Boolean);
  if (ways.length === 0) problems.push("NATS credentials are required: set NATS_USER and NATS_PASSWORD, NATS_TOKEN, NATS_CREDS_FILE or NATS_NKEY_SEED_FILE");
  if (ways.length > 1) problems.push(`use one way to authenticate to NATS, not ${ways.join(" and ")}`);
  if (Boolean(c.natsUser) !== Boolean(c.natsPassword)) problems.push("NATS_USER and NATS_PASSWORD must be set together");
  if (Boolean(c.natsTlsCertFile) !== Boolean(c.natsTlsKeyFile)) problems.push("NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE must be set together");
  if (c.natsUrl.split(",").some((u) => /\/\/[^/]*@/.test(u))) problems.push("NATS_URL must not carry credentials (user:password@); set NATS_USER and NATS_PASSWORD (or another credential variable) instead");
  return problems;
}

/** The server list of a NATS_URL value, without any user info, for logs. */
export function natsServersForLog(natsUrl: string): string {
  return natsUrl
    .split(",")
    .map((u) => u.trim().replace(/\/\/[^/@]*@/, "//"))
    .join(",");
}
