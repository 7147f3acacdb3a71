// Who may do what on the bus. One NATS user per kind of process, each allowed exactly the subjects its work needs:
// a media node publishes only the types it emits, the HTTP -> NATS bridge only the types the edge may put on the
// bus, the NATS -> HTTP bridge only consumes (and parks refused events in the dead-letter stream), and nobody
// else publishes events except an operator. JetStream is reached through subjects too ($JS.API.*, acks on
// $JS.ACK.*, answers on _INBOX.*), so those are granted per stream and per operation.
//
// deploy/nats/nats-server.conf carries this block (passwords from the server's environment), the test helper and
// `npm start` render it with per-run passwords, and a test keeps the shipped file equal to it.

import { ACCEPTED_TYPES } from "../bridges/http-to-nats/handler.ts";
import { DEAD_LETTER_PREFIX, HEARTBEAT_SUBJECT, MEDIA_NODE_TYPES } from "./subjects.ts";
import { BROADCAST_BUCKET, LEASE_BUCKET } from "../fleet/kv.ts";

export const NATS_ROLES = ["media-node", "http-to-nats", "nats-to-http", "notifier", "ops"] as const;
export type NatsRole = (typeof NATS_ROLES)[number];

export interface StreamNames {
  stream: string;
  edgeStream: string;
  jobStream: string;
  deadLetterStream: string;
  consumer: string;
  /** the durable pull consumer every media node's VOD worker shares */
  jobConsumer: string;
  /** the email notifier's durable consumer on the edge stream */
  notifierConsumer: string;
}

export const DEFAULT_STREAM_NAMES: StreamNames = {
  stream: "EVENTS",
  edgeStream: "EDGE_EVENTS",
  jobStream: "VOD_JOBS",
  deadLetterStream: "DEADLETTER",
  consumer: "edge-bridge",
  jobConsumer: "vod-workers",
  notifierConsumer: "notifier",
};

/**
 * Declaring a durable pull consumer, pulling from it and acking: the JetStream API subjects the client uses for
 * that (nats.js picks CREATE with or without the filter subject depending on the server).
 */
function pullConsumer(stream: string, consumer: string): string[] {
  return [
    `$JS.API.CONSUMER.INFO.${stream}.${consumer}`,
    `$JS.API.CONSUMER.CREATE.${stream}.${consumer}`,
    `$JS.API.CONSUMER.CREATE.${stream}.${consumer}.>`,
    `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.${consumer}`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`,
    `$JS.ACK.${stream}.${consumer}.>`,
  ];
}

/**
 * Where a role's replies arrive (JetStream acks, API answers, pulled events). Each role has its own prefix and may
 * subscribe only there, so no client can read the replies, and so the events, meant for another.
 */
export function inboxPrefix(role: NatsRole): string {
  return `_INBOX.${role}`;
}

/** The environment variable the shipped server config reads a role's password from. */
export function passwordVariable(role: NatsRole): string {
  return `NATS_PASSWORD_${role.toUpperCase().replace(/-/g, "_")}`;
}

/** Declaring the streams (every process does it at start, idempotently): info, create, update; nothing else. */
function declareStreams(n: StreamNames): string[] {
  return ["$JS.API.INFO", ...[n.stream, n.edgeStream, n.jobStream, n.deadLetterStream].flatMap((s) => [`$JS.API.STREAM.INFO.${s}`, `$JS.API.STREAM.CREATE.${s}`, `$JS.API.STREAM.UPDATE.${s}`])];
}

/**
 * A KV bucket read and written by key (leases, broadcast state): declaring it, its keys' subjects, reads (direct
 * and by stream), and listing keys (an ordered consumer of its own, with flow control).
 */
function kvBucket(bucket: string): string[] {
  const stream = `KV_${bucket}`;
  return [
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.STREAM.CREATE.${stream}`,
    `$JS.API.STREAM.UPDATE.${stream}`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
    `$JS.FC.${stream}.>`,
    `$KV.${bucket}.>`,
  ];
}

/**
 * Where a media node answers "are you there?" (`fleet.alive.<nodeId>`): another node finding a stream's lease held
 * asks its holder, and takes the stream at once when nobody answers (the holder's connection is gone) instead of
 * waiting for the lease to expire.
 */
export const ALIVE_SUBJECT_PREFIX = "fleet.alive";

/**
 * Publish and subscribe allow-lists per role (`allowResponses`: it may answer requests it receives); undefined for
 * `ops`, which may do anything (operators only).
 */
export function natsPermissions(role: NatsRole, n: StreamNames = DEFAULT_STREAM_NAMES): { publish: string[]; subscribe: string[]; allowResponses?: boolean } | undefined {
  const inbox = [`${inboxPrefix(role)}.>`];
  switch (role) {
    case "media-node":
      // Its VOD worker pulls finished uploads from the job stream (and acks, extends or ends them); it heartbeats,
      // and holds leases on its streams and their broadcasts' shared state in KV.
      return {
        publish: [...MEDIA_NODE_TYPES, HEARTBEAT_SUBJECT, `${ALIVE_SUBJECT_PREFIX}.*`, ...declareStreams(n), ...pullConsumer(n.jobStream, n.jobConsumer), ...kvBucket(LEASE_BUCKET), ...kvBucket(BROADCAST_BUCKET)],
        subscribe: [...inbox, `${ALIVE_SUBJECT_PREFIX}.*`],
        allowResponses: true,
      };
    case "http-to-nats":
      return { publish: [...ACCEPTED_TYPES, ...declareStreams(n)], subscribe: inbox };
    case "nats-to-http":
      return {
        publish: [
          ...declareStreams(n),
          ...pullConsumer(n.stream, n.consumer),
          `${DEAD_LETTER_PREFIX}.>`,
        ],
        // and forwards the media nodes' heartbeats (a queue group shared by its replicas)
        subscribe: [...inbox, HEARTBEAT_SUBJECT],
      };
    case "notifier":
      // Consumes notification.email from the edge stream; publishes only its answers.
      return {
        publish: [
          "notification.sent",
          ...declareStreams(n),
          ...pullConsumer(n.edgeStream, n.notifierConsumer),
        ],
        subscribe: inbox,
      };
    case "ops":
      return undefined;
  }
}

const q = (s: string) => JSON.stringify(s);

/**
 * The server's `authorization` block. `passwords: "env"` references each role's password variable (the shipped
 * file); a record puts the given passwords in (tests, `npm start`).
 */
export function natsAuthorizationBlock(passwords: "env" | Record<NatsRole, string>, n: StreamNames = DEFAULT_STREAM_NAMES): string {
  const users = NATS_ROLES.map((role) => {
    const password = passwords === "env" ? `$${passwordVariable(role)}` : q(passwords[role]);
    const p = natsPermissions(role, n);
    const lines = [`    {`, `      user: ${q(role)}`, `      password: ${password}`];
    if (p) {
      lines.push(`      permissions: {`);
      lines.push(`        publish: { allow: [${p.publish.map(q).join(", ")}] }`);
      lines.push(`        subscribe: { allow: [${p.subscribe.map(q).join(", ")}] }`);
      if (p.allowResponses) lines.push(`        allow_responses: true`);
      lines.push(`      }`);
    }
    lines.push(`    }`);
    return lines.join("\n");
  });
  return ["authorization {", "  users: [", ...users, "  ]", "}"].join("\n");
}
