// Per-object load counters of a big room's parts, read by the internal stats route and the bench: how many
// events came in (client frames, link frames, RPCs), how long the object's handlers ran, how many sockets it
// holds. Handler time is performance.now() around each handler: in production timers only advance on I/O, so
// these figures are for local measurement; the counts are exact everywhere.

export interface ObjectStats {
  name: string;
  kind: "coordinator" | "relay" | "shard";
  /** sockets held (client sockets for a shard, links for a coordinator or relay) */
  sockets: number;
  /** incoming events since the counters started */
  events: number;
  /** of those, frames from client sockets (a shard's; 0 elsewhere) */
  clientFrames: number;
  /** handler time since the counters started, ms */
  busyMs: number;
  /** WebSocket messages sent */
  sends: number;
  /** ms the counters have been running */
  sinceMs: number;
}

export class LoadMeter {
  events = 0;
  clientFrames = 0;
  busyMs = 0;
  sends = 0;
  private started = Date.now();

  /** Runs `fn` as one handler: counts an incoming event when `incoming`, and its time. */
  time<T>(incoming: boolean, fn: () => T): T {
    if (incoming) this.events++;
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      this.busyMs += performance.now() - t0;
    }
  }

  reset(): void {
    this.events = 0;
    this.clientFrames = 0;
    this.busyMs = 0;
    this.sends = 0;
    this.started = Date.now();
  }

  snapshot(name: string, kind: ObjectStats["kind"], sockets: number): ObjectStats {
    return { name, kind, sockets, events: this.events, clientFrames: this.clientFrames, busyMs: Math.round(this.busyMs * 1000) / 1000, sends: this.sends, sinceMs: Date.now() - this.started };
  }
}
