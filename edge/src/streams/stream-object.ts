// One Durable Object per stream (named by the stream id): its settings, key version, status and recordings.
// Single-threaded per stream, so a key rotation and a key check or an event can never interleave halfway.
// Media-node events are applied exactly once through the AppliedLedger, in the same transaction as the change.
import { DurableObject } from "cloudflare:workers";
import { type Envelope, parseEvent } from "../../../shared/envelope.ts";
import type { Env } from "../env.ts";
import { AppliedLedger, claimedId, type EventApplyOutcome, errorText } from "../ledger/applied-ledger.ts";
import { applyUpdate, type CreateBody, isStreamEvent, newRecord, nextStreamRecord, type StreamRecord, type UpdateBody } from "./model.ts";

/** What is left of a deleted stream: enough to refuse its keys and its id forever. */
interface Tombstone {
  deleted: true;
  id: string;
  ownerId: string;
  deletedAt: number;
}

export type KeyCheck =
  | { ok: true; keyVersion: number; record: boolean; latencyMode: "normal" | "low" }
  | { ok: false; reason: "unknown-stream" | "deleted" | "disabled" | "revoked-key"; keyVersion?: number };

/** What playback needs to know, cacheable for a moment per isolate. */
export interface PlaybackState {
  exists: boolean;
  policy?: "public" | "signed";
  playable: boolean;
}

export class Stream extends DurableObject<Env> {
  private readonly ledger: AppliedLedger;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS stream (k TEXT PRIMARY KEY, v TEXT NOT NULL)");
    this.ledger = new AppliedLedger(ctx.storage);
  }

  private read(): StreamRecord | Tombstone | null {
    const row = this.ctx.storage.sql.exec<{ v: string }>("SELECT v FROM stream WHERE k = 'record'").toArray()[0];
    return row ? (JSON.parse(row.v) as StreamRecord | Tombstone) : null;
  }

  private write(v: StreamRecord | Tombstone): void {
    this.ctx.storage.sql.exec("INSERT INTO stream (k, v) VALUES ('record', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", JSON.stringify(v));
  }

  private live(): StreamRecord | null {
    const r = this.read();
    return r && !("deleted" in r) ? r : null;
  }

  /** Creates the stream; null when the id is taken (or was used by a deleted stream). */
  async create(init: { id: string; ownerId: string; body: CreateBody }): Promise<StreamRecord | null> {
    if (this.read()) return null;
    const r = newRecord({ ...init, now: Date.now() });
    this.write(r);
    return r;
  }

  async get(): Promise<StreamRecord | null> {
    return this.live();
  }

  async update(body: UpdateBody): Promise<StreamRecord | null> {
    const r = this.live();
    if (!r) return null;
    const next = applyUpdate(r, body, Date.now());
    this.write(next);
    return next;
  }

  /** New key version: every earlier key stops working. */
  async rotateKey(): Promise<StreamRecord | null> {
    const r = this.live();
    if (!r) return null;
    const next = { ...r, keyVersion: r.keyVersion + 1, updatedAt: Date.now() };
    this.write(next);
    return next;
  }

  async setDisabled(disabled: boolean): Promise<StreamRecord | null> {
    const r = this.live();
    if (!r) return null;
    const next = { ...r, disabled, updatedAt: Date.now() };
    this.write(next);
    return next;
  }

  /** Deletes the stream, keeping a tombstone so its keys and id stay refused. */
  async remove(): Promise<boolean> {
    const r = this.live();
    if (!r) return false;
    this.write({ deleted: true, id: r.id, ownerId: r.ownerId, deletedAt: Date.now() });
    return true;
  }

  /** The media nodes' question: may a publisher with key version `kv` publish (or stay on air)? */
  async checkKey(kv: number): Promise<KeyCheck> {
    const r = this.read();
    if (!r) return { ok: false, reason: "unknown-stream" };
    if ("deleted" in r) return { ok: false, reason: "deleted" };
    if (r.disabled) return { ok: false, reason: "disabled", keyVersion: r.keyVersion };
    if (kv !== r.keyVersion) return { ok: false, reason: "revoked-key", keyVersion: r.keyVersion };
    return { ok: true, keyVersion: r.keyVersion, record: r.record, latencyMode: r.latencyMode };
  }

  async playbackState(): Promise<PlaybackState> {
    const r = this.live();
    if (!r) return { exists: false, playable: false };
    return { exists: true, policy: r.policy, playable: !r.disabled };
  }

  /**
   * Applies media-node events, each exactly once, in one transaction. Events for a stream this object does not
   * hold (never created here, or deleted) are acknowledged without effect: streams published with a
   * command-line token have no object, and the room still gets the event.
   */
  async applyEvents(events: Envelope[]): Promise<EventApplyOutcome[]> {
    const checked = events.map((event, index): EventApplyOutcome | { id: string; event: Envelope } => {
      const parsed = parseEvent(event);
      if (!parsed.ok) return { id: claimedId(event, index), applied: false, error: `stream: ${parsed.error}` };
      if (!isStreamEvent(parsed.event)) return { id: parsed.event.id, applied: false, error: `stream: streams take stream.* and media.ready events, not '${parsed.event.type}'` };
      return { id: parsed.event.id, event: parsed.event };
    });
    const valid = checked.filter((c): c is { id: string; event: Envelope } => "event" in c);
    const before = this.live();
    if (!before) return checked.map((c) => ("event" in c ? { id: c.id, applied: false } : c));
    let fresh: boolean[];
    try {
      ({ fresh } = this.ledger.claimMany(
        valid.map((v) => v.id),
        (fresh) => {
          const after = valid.reduce((r, v, i) => (fresh[i] ? nextStreamRecord(r, v.event) : r), before);
          if (after !== before) this.write({ ...after, updatedAt: Date.now() });
        },
      ));
    } catch (error) {
      const message = `stream ${before.id}: ${errorText(error)}`;
      return checked.map((c) => ("event" in c ? { id: c.id, applied: false, error: message } : c));
    }
    const outcome = new Map(valid.map((v, i) => [v, fresh[i]!]));
    return checked.map((c) => ("event" in c ? { id: c.id, applied: outcome.get(c)! } : c));
  }
}
