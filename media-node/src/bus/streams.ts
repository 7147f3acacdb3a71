// JetStream streams and consumers, declared idempotently at start-up: any number of media nodes and bridge
// replicas may run this at the same time, against a fresh server or one that already has everything.

import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  type JetStreamManager,
  nanos,
  NatsError,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "nats";
import type { SettingsOf } from "../../../shared/settings/settings.ts";
import type { natsStreamSettings } from "../settings/nats.ts";
import { DEAD_LETTER_PREFIX, edgeEventSubjects, jobSubjects, nodeEventSubjects } from "./subjects.ts";

type StreamSettings = SettingsOf<typeof natsStreamSettings>;

/** JetStream API error codes we handle (nats-server's errors.json). */
const STREAM_NAME_IN_USE = 10058;
const CONSUMER_NOT_FOUND = 10014;

function apiErrorCode(error: unknown): number | undefined {
  return error instanceof NatsError ? error.api_error?.err_code : undefined;
}

export function eventsStreamConfig(cfg: Pick<StreamSettings, "stream" | "duplicateWindowS" | "maxAgeS"> & Partial<Pick<StreamSettings, "replicas">>): Partial<StreamConfig> & { name: string } {
  return {
    name: cfg.stream,
    subjects: nodeEventSubjects(),
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    duplicate_window: nanos(cfg.duplicateWindowS * 1000),
    max_age: nanos(cfg.maxAgeS * 1000),
    // In a JetStream cluster, each stream on NATS_REPLICAS servers: one server lost loses nothing stored.
    num_replicas: cfg.replicas ?? 1,
  };
}

/** The edge-only types, kept out of EVENTS so the NATS -> HTTP bridge never fetches them. */
export function edgeEventsStreamConfig(cfg: Pick<StreamSettings, "edgeStream" | "duplicateWindowS" | "maxAgeS"> & Partial<Pick<StreamSettings, "replicas">>): Partial<StreamConfig> & { name: string } {
  return {
    name: cfg.edgeStream,
    subjects: edgeEventSubjects(),
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    duplicate_window: nanos(cfg.duplicateWindowS * 1000),
    max_age: nanos(cfg.maxAgeS * 1000),
    // In a JetStream cluster, each stream on NATS_REPLICAS servers: one server lost loses nothing stored.
    num_replicas: cfg.replicas ?? 1,
  };
}

/**
 * Finished uploads waiting for a media node. Work-queue retention: a job leaves the stream when a worker acks
 * it, and only one consumer may take each subject (every node shares the one durable consumer).
 */
export function jobStreamConfig(cfg: Pick<StreamSettings, "jobStream" | "duplicateWindowS" | "maxAgeS"> & Partial<Pick<StreamSettings, "replicas">>): Partial<StreamConfig> & { name: string } {
  return {
    name: cfg.jobStream,
    subjects: jobSubjects(),
    storage: StorageType.File,
    retention: RetentionPolicy.Workqueue,
    discard: DiscardPolicy.Old,
    duplicate_window: nanos(cfg.duplicateWindowS * 1000),
    max_age: nanos(cfg.maxAgeS * 1000),
    // In a JetStream cluster, each stream on NATS_REPLICAS servers: one server lost loses nothing stored.
    num_replicas: cfg.replicas ?? 1,
  };
}

export function deadLetterStreamConfig(cfg: Pick<StreamSettings, "deadLetterStream" | "duplicateWindowS"> & Partial<Pick<StreamSettings, "replicas">>): Partial<StreamConfig> & { name: string } {
  return {
    name: cfg.deadLetterStream,
    subjects: [`${DEAD_LETTER_PREFIX}.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    duplicate_window: nanos(cfg.duplicateWindowS * 1000),
    // Dead letters wait for a human: keep them a month.
    max_age: nanos(30 * 86400 * 1000),
    num_replicas: cfg.replicas ?? 1,
  };
}

/** Creates the stream, or brings an existing one to `config` (e.g. a new event family added to the subjects). */
export async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  try {
    await jsm.streams.add(config);
  } catch (error) {
    if (apiErrorCode(error) !== STREAM_NAME_IN_USE) throw error;
    // Exists with another configuration (another node declared an older one): converge on ours.
    await jsm.streams.update(config.name, config);
  }
}

export async function ensureEventStreams(jsm: JetStreamManager, cfg: StreamSettings): Promise<void> {
  // EVENTS first: a stream declared by an older version still holds the edge-only subjects, which must leave it
  // before EDGE_EVENTS can take them (two streams may not share a subject).
  await ensureStream(jsm, eventsStreamConfig(cfg));
  await ensureStream(jsm, edgeEventsStreamConfig(cfg));
  // After EDGE_EVENTS: a stream declared by an older version held the job subjects there.
  await ensureStream(jsm, jobStreamConfig(cfg));
  await ensureStream(jsm, deadLetterStreamConfig(cfg));
}

export interface DurablePullConsumer {
  stream: string;
  durable: string;
  /** how long a delivered event may go without ack (or `working()`) before JetStream redelivers it */
  ackWaitMs: number;
  /** upper bound on delivered-but-unacked events across all replicas */
  maxAckPending: number;
  /** only these subjects (one filter: nats-server 2.9 has no filter lists) */
  filterSubject?: string;
}

/**
 * A durable pull consumer that never gives up on an event (max_deliver unlimited): events leave only by an ack,
 * after delivery or after being moved to the dead-letter stream.
 */
export async function ensureDurableConsumer(jsm: JetStreamManager, c: DurablePullConsumer): Promise<void> {
  const config = {
    durable_name: c.durable,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(c.ackWaitMs),
    max_ack_pending: c.maxAckPending,
    max_deliver: -1,
    ...(c.filterSubject ? { filter_subject: c.filterSubject } : {}),
  };
  try {
    await jsm.consumers.info(c.stream, c.durable);
  } catch (error) {
    if (apiErrorCode(error) !== CONSUMER_NOT_FOUND) throw error;
    try {
      await jsm.consumers.add(c.stream, { ...config, deliver_policy: DeliverPolicy.All });
      return;
    } catch (addError) {
      // Another replica created it between our info and add: fall through to update.
      if (apiErrorCode(addError) === undefined) throw addError;
    }
  }
  // Exists: update the settings that may change (deliver policy and filter are fixed at creation).
  await jsm.consumers.update(c.stream, c.durable, { ack_wait: config.ack_wait, max_ack_pending: config.max_ack_pending, max_deliver: -1 });
}
