// A relay of a big room: used when a room has more shards than one coordinator should link to directly
// (ROOM_SHARDS > ROOM_RELAY_FANOUT). Shards of one group link to their relay; the relay links to the coordinator.
// Down, it passes each coordinator frame to its shards unchanged (one send per shard). Up, it passes chat and
// moderation on at once, and sums reactions (per window) and presence reports (per summary period), so the
// coordinator's incoming load grows with the number of relays, not of shards.
//
// It keeps nothing durable. Its shard links are hibernatable; its own link up is dialled again when it starts,
// and the coordinator wakes it if that link drops without a clean close.
import { DurableObject } from "cloudflare:workers";
import { errorResponse } from "../auth/errors.ts";
import type { Env } from "../env.ts";
import { errorText } from "../ledger/applied-ledger.ts";
import { MAX_EMOJI_PER_WINDOW } from "../rooms/reactions.ts";
import { type EdgeSettings, edgeSettings } from "../settings.ts";
import { parseUp, type PresenceReport, sumReports } from "./links.ts";
import { parsePartName } from "./placement.ts";
import { LoadMeter, type ObjectStats } from "./stats.ts";
import { Uplink } from "./uplink.ts";

const OPEN = 1;
const REPORT_TTL_PERIODS = 5;

export class RoomRelay extends DurableObject<Env> {
  private readonly settings: EdgeSettings;
  private readonly meter = new LoadMeter();
  private readonly uplink: Uplink;
  private reactions = new Map<string, number>();
  private reactionTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly reports = new Map<string, { report: PresenceReport; at: number }>();
  private reportTimer: ReturnType<typeof setInterval> | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.settings = edgeSettings(env);
    const name = ctx.id.name ?? "";
    const part = parsePartName(name);
    this.uplink = new Uplink({
      label: `relay ${name}`,
      dial: () => {
        if (!part || part.kind !== "relay") throw new Error(`'${name}' is not a relay name`);
        return env.RoomCoordinator.getByName(part.roomId).fetch(`http://link/link?from=${encodeURIComponent(name)}`, { headers: { Upgrade: "websocket" } });
      },
      onMessage: (text) => this.meter.time(true, () => this.down(text)),
    });
    if (ctx.getWebSockets("link").length > 0) void ctx.blockConcurrencyWhile(() => this.start());
  }

  private get name(): string {
    return this.ctx.id.name ?? "?";
  }

  private async start(): Promise<void> {
    await this.uplink.ensure();
    this.reportTimer ??= setInterval(() => this.meter.time(false, () => this.report()), this.settings.roomSummaryMs);
  }

  /** RPC: the coordinator's nudge after this relay's link dropped. */
  async wake(): Promise<void> {
    await this.start();
  }

  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname !== "/link" || request.headers.get("upgrade")?.toLowerCase() !== "websocket") return errorResponse(404, "not_found", "relays take shard links only");
    this.meter.events++;
    const from = url.searchParams.get("from") ?? "";
    const part = parsePartName(from);
    const me = parsePartName(this.name);
    if (!part || part.kind !== "shard" || !me || part.roomId !== me.roomId) return errorResponse(400, "invalid_link", `'${from}' is not a shard of this relay's room`);
    await this.start();
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1], ["link"]);
    pair[1].serializeAttachment({ from });
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  override webSocketMessage(_ws: WebSocket, message: string | ArrayBuffer): void {
    this.meter.time(true, () => {
      const text = typeof message === "string" ? message : new TextDecoder().decode(message);
      const frame = parseUp(text);
      if (!frame) return console.error(`relay ${this.name}: unreadable link frame`);
      switch (frame.k) {
        case "up":
          return this.uplink.send(text);
        case "react":
          for (const [emoji, n] of Object.entries(frame.counts)) {
            const current = this.reactions.get(emoji);
            if (current === undefined && this.reactions.size >= MAX_EMOJI_PER_WINDOW) continue;
            this.reactions.set(emoji, (current ?? 0) + n);
          }
          this.reactionTimer ??= setTimeout(() => this.meter.time(false, () => this.flushReactions()), this.settings.roomReactionFlushMs);
          return;
        case "presence":
          this.reports.set(frame.from, { report: frame.report, at: Date.now() });
          return;
      }
    });
  }

  override webSocketClose(ws: WebSocket, code: number): void {
    const from = (ws.deserializeAttachment() as { from?: string } | null)?.from;
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, "link closed");
    } catch {
      // already closed
    }
    if (!from) return;
    this.reports.delete(from);
    // The last shard gone (cleanly): nothing to relay, so the link up goes too; the next shard link dials it again.
    if (code === 1000 && this.ctx.getWebSockets("link").every((other) => other === ws || other.readyState !== OPEN)) this.stop();
    if (code !== 1000) this.ctx.waitUntil(this.env.RoomShard.getByName(from).wake().catch((error: unknown) => console.warn(`relay ${this.name}: could not wake ${from}: ${errorText(error)}`)));
  }

  private stop(): void {
    this.uplink.stop();
    if (this.reportTimer) clearInterval(this.reportTimer);
    this.reportTimer = null;
  }

  private flushReactions(): void {
    this.reactionTimer = null;
    if (this.reactions.size === 0) return;
    const counts = Object.fromEntries(this.reactions);
    this.reactions = new Map();
    this.uplink.send(JSON.stringify({ k: "react", counts }));
  }

  private report(): void {
    const now = Date.now();
    const ttl = REPORT_TTL_PERIODS * this.settings.roomSummaryMs;
    for (const [from, r] of this.reports) if (now - r.at > ttl) this.reports.delete(from);
    this.uplink.send(JSON.stringify({ k: "presence", from: this.name, report: sumReports([...this.reports.values()].map((r) => r.report)) }));
  }

  /** A coordinator frame: to every shard linked here, as it came. */
  private down(text: string): void {
    for (const ws of this.ctx.getWebSockets("link")) {
      if (ws.readyState !== OPEN) continue;
      try {
        ws.send(text);
        this.meter.sends++;
      } catch {
        // closing
      }
    }
  }

  async stats(): Promise<ObjectStats> {
    return this.meter.snapshot(this.name, "relay", this.ctx.getWebSockets("link").length);
  }

  async resetStats(): Promise<void> {
    this.meter.reset();
  }
}
