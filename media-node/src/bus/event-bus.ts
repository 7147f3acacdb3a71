// The media node's way to emit events: `publish(event)` is durable once it resolves (fsync'd to the local
// outbox), and reaches JetStream in order as soon as NATS is reachable. This is what the live pipeline, VOD
// jobs and anything else on a media node wire to.

import type { JetStreamClient, NatsConnection } from "nats";
import type { Envelope } from "../../../shared/envelope.ts";
import type { BusConfig } from "./config.ts";
import { connectNats } from "./connect.ts";
import { inboxPrefix } from "./nats-permissions.ts";
import { Outbox } from "./outbox/outbox.ts";
import { publishEvent } from "./publish.ts";
import { ensureEventStreams } from "./streams.ts";

/** Where producers send events. Resolves once the event will not be lost (not once it was delivered). */
export interface EventSink {
  publish(event: Envelope): Promise<void>;
}

export interface MediaEventBus extends EventSink {
  /** opens the outbox (taking its lock) and starts connecting to NATS in the background */
  start(): Promise<void>;
  /** stops pumping and closes NATS; unconfirmed events stay on disk for the next start */
  stop(): Promise<void>;
  /** resolves once every event published so far is stored in JetStream */
  drained(): Promise<void>;
  /** events on disk not yet confirmed by JetStream */
  readonly backlog: number;
  readonly stats: Outbox["stats"];
  /**
   * The bus's NATS connection once it is up (undefined before the first connect and after stop()): the node's
   * other users of NATS (heartbeats, stream leases) share it rather than holding connections of their own.
   */
  connection(): NatsConnection | undefined;
  /** resolves with the connection once the first connect succeeded (never, if stop() came first) */
  connected(): Promise<NatsConnection>;
}

export function createMediaEventBus(cfg: BusConfig, opts: { name: string; log?: (message: string) => void }): MediaEventBus {
  const log = opts.log ?? ((m: string) => console.log(`[bus] ${m}`));
  let nc: NatsConnection | undefined;
  let js: JetStreamClient | undefined;
  let connecting: Promise<void> | undefined;
  // Streams are declared on first contact, and again after a publish finds no stream (a wiped server).
  let streamsReady = false;
  let stopped = false;
  let linkUp = false;
  let onConnected!: (nc: NatsConnection) => void;
  const firstConnect = new Promise<NatsConnection>((r) => (onConnected = r));

  const outbox = new Outbox({
    dir: cfg.outboxDir,
    maxBytes: cfg.outboxMaxBytes,
    window: cfg.outboxPublishWindow,
    log,
    async store(event, bytes) {
      if (!js || !nc) throw new Error("not connected to NATS yet");
      // While the client reconnects it would buffer a publish and send it after the reconnect, ahead of earlier
      // events whose acks were lost with the old connection (those are re-sent only after their timeout): fail it
      // now instead, so everything unconfirmed is re-sent in order once NATS is back.
      if (!linkUp) throw new Error("NATS connection is down; reconnecting");
      if (!streamsReady) {
        await ensureEventStreams(await nc.jetstreamManager(), cfg);
        streamsReady = true;
      }
      try {
        return await publishEvent(js, event, { timeoutMs: cfg.publishTimeoutMs, bytes });
      } catch (error) {
        if (/no responders|stream not found/i.test(String((error as Error).message))) streamsReady = false;
        throw error;
      }
    },
  });

  return {
    async start() {
      await outbox.start();
      // Not awaited: events are accepted (and kept on disk) before NATS is reachable.
      const onStatus = (status: string, detail?: string) => {
        if (status === "pingTimer") return;
        log(`nats ${status}${detail ? ` ${detail}` : ""}`);
        if (status === "disconnect") linkUp = false;
        if (status === "reconnect") {
          linkUp = true;
          outbox.nudge();
        }
      };
      connecting = connectNats(cfg, { name: opts.name, inboxPrefix: inboxPrefix("media-node"), onStatus }).then(
        async (conn) => {
          if (stopped) return void (await conn.close());
          nc = conn;
          js = conn.jetstream();
          linkUp = true;
          outbox.nudge();
          onConnected(conn);
        },
        (error: Error) => log(`nats connect failed for good: ${error.message}`),
      );
    },
    publish: (event) => outbox.publish(event),
    connection: () => (stopped ? undefined : nc),
    connected: () => firstConnect,
    drained: () => outbox.drained(),
    get backlog() {
      return outbox.backlog;
    },
    stats: outbox.stats,
    async stop() {
      stopped = true;
      await outbox.stop();
      // A connect still waiting for a server is abandoned (the process is going away or restarting the bus).
      if (nc) await nc.drain().catch(() => nc?.close());
      void connecting;
    },
  };
}
