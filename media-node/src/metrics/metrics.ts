// Prometheus metrics of the live media node, on its own prom-client Registry (not the global one, so tests
// and several registries in one process never collide). The live pipeline calls the narrow LiveMetrics
// interface; the uploader and ingest are read through their events and counters.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Progress } from "../transcode/progress.ts";

/** What the live pipeline reports. Per-stream series are removed when the stream ends (bounded cardinality). */
export interface LiveMetrics {
  streamStarted(streamId: string): void;
  streamEnded(streamId: string, reason: string): void;
  ffmpegProgress(streamId: string, progress: Progress): void;
  ffmpegRestarted(streamId: string): void;
  /** segment closed by FFmpeg -> stored (segment and its init) */
  segmentStored(seconds: number): void;
  /** a low-latency part was announced to the edge, `seconds` after its last frame reached the node */
  partAnnounced(seconds: number): void;
  uploadFailed(kind: "segment" | "playlist"): void;
  publishRefused(reason: string): void;
  /** a rung was shed from a ladder that could not keep up with real time */
  rungShed(rung: string): void;
}

export class NodeMetrics implements LiveMetrics {
  readonly registry = new Registry();
  readonly #active: Gauge;
  readonly #speed: Gauge;
  readonly #fps: Gauge;
  readonly #restarts: Counter;
  readonly #ended: Counter;
  readonly #uploadSeconds: Histogram;
  readonly #partLag: Histogram;
  readonly #uploadFailures: Counter;
  readonly #bytesOut: Counter;
  readonly #refused: Counter;
  readonly #rtmpRefused: Counter;
  readonly #shed: Counter;
  readonly #live = new Set<string>();

  constructor(opts: { bytesIn?: () => number; rtmpConnections?: () => number; defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: "pulsecast_media_" });
    this.#active = new Gauge({ name: "pulsecast_live_streams", help: "Live streams on this node (publishing or within the reconnect grace window)", registers });
    this.#speed = new Gauge({ name: "pulsecast_ffmpeg_speed", help: "FFmpeg encoding speed per stream, relative to realtime (below 1 means falling behind)", labelNames: ["stream"], registers });
    this.#fps = new Gauge({ name: "pulsecast_ffmpeg_fps", help: "FFmpeg frames encoded per second, per stream", labelNames: ["stream"], registers });
    this.#restarts = new Counter({ name: "pulsecast_ffmpeg_restarts_total", help: "FFmpeg processes restarted while the publisher was still there", registers });
    this.#ended = new Counter({ name: "pulsecast_streams_ended_total", help: "Live streams ended, by reason", labelNames: ["reason"], registers });
    this.#uploadSeconds = new Histogram({
      name: "pulsecast_segment_upload_seconds",
      help: "Segment closed by FFmpeg -> stored in object storage",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers,
    });
    this.#partLag = new Histogram({
      name: "pulsecast_llhls_part_lag_seconds",
      help: "Low-latency parts: last frame of the part in at the node -> part announced to (and taken by) the edge",
      buckets: [0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2, 5],
      registers,
    });
    this.#uploadFailures = new Counter({ name: "pulsecast_upload_failures_total", help: "Failed upload attempts (retried) and uploads given up", labelNames: ["kind"], registers });
    this.#bytesOut = new Counter({ name: "pulsecast_bytes_out_total", help: "Bytes uploaded to object storage (segments and playlists)", registers });
    this.#refused = new Counter({ name: "pulsecast_publish_refused_total", help: "RTMP publishes refused, by reason", labelNames: ["reason"], registers });
    this.#rtmpRefused = new Counter({
      name: "pulsecast_rtmp_refused_total",
      help: "RTMP connections refused or closed by the ingest: connection caps, handshake timeout, plays without a valid pull credential; by reason",
      labelNames: ["reason"],
      registers,
    });
    this.#shed = new Counter({
      name: "pulsecast_rungs_shed_total",
      help: "Rungs shed from live ladders that encoded slower than real time (MEDIA_SHED_BELOW_SPEED), by rung",
      labelNames: ["rung"],
      registers,
    });
    const rtmpConnections = opts.rtmpConnections;
    if (rtmpConnections) {
      new Gauge({
        name: "pulsecast_rtmp_connections",
        help: "Open connections on the RTMP/RTMPS port",
        registers,
        collect() {
          this.set(rtmpConnections());
        },
      });
    }
    const bytesIn = opts.bytesIn;
    new Counter({
      name: "pulsecast_bytes_in_total",
      help: "Bytes received from RTMP publishers",
      registers,
      collect() {
        // A counter read from the ingest at scrape time: set it to the running total.
        if (bytesIn) {
          this.reset();
          this.inc(bytesIn());
        }
      },
    });
  }

  streamStarted(streamId: string): void {
    this.#live.add(streamId);
    this.#active.set(this.#live.size);
  }

  streamEnded(streamId: string, reason: string): void {
    this.#live.delete(streamId);
    this.#active.set(this.#live.size);
    this.#speed.remove(streamId);
    this.#fps.remove(streamId);
    this.#ended.inc({ reason });
  }

  ffmpegProgress(streamId: string, p: Progress): void {
    if (p.speed !== undefined) this.#speed.set({ stream: streamId }, p.speed);
    if (p.fps !== undefined) this.#fps.set({ stream: streamId }, p.fps);
  }

  ffmpegRestarted(): void {
    this.#restarts.inc();
  }

  segmentStored(seconds: number): void {
    this.#uploadSeconds.observe(seconds);
  }

  partAnnounced(seconds: number): void {
    this.#partLag.observe(seconds);
  }

  /** bytes that reached storage (fed from the uploader's `uploaded` events) */
  bytesUploaded(bytes: number): void {
    this.#bytesOut.inc(bytes);
  }

  uploadFailed(kind: "segment" | "playlist"): void {
    this.#uploadFailures.inc({ kind });
  }

  publishRefused(reason: string): void {
    this.#refused.inc({ reason });
  }

  rungShed(rung: string): void {
    this.#shed.inc({ rung });
  }

  /** a connection refused or closed by the ingest's limits, or a refused play */
  rtmpRefused(reason: string): void {
    this.#rtmpRefused.inc({ reason });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
