// The recent chat messages a shard keeps, so welcomes and resumes are served by the shard the client lands on.
// Messages arrive in id order (the coordinator numbers them); the oldest fall off past `capacity`.
import type { ChatMessage } from "../../../shared/protocol/room.ts";

export class MessageRing {
  private items: ChatMessage[] = [];
  private readonly capacity: number;
  /** id of the newest message the shard knows (0 before any); may be ahead of the ring when it was filled late */
  lastId = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** Adds a message newer than any held; an older or repeated one is ignored. */
  push(m: ChatMessage): void {
    if (m.id <= this.lastId) return;
    this.items.push(m);
    this.lastId = m.id;
    if (this.items.length > this.capacity) this.items.splice(0, this.items.length - this.capacity);
  }

  /** Replaces the content (a snapshot from the coordinator), keeping `lastId` at least where it was. */
  fill(messages: ChatMessage[], lastId: number): void {
    this.items = messages.slice(-this.capacity);
    this.lastId = Math.max(lastId, this.items.at(-1)?.id ?? 0);
  }

  markDeleted(id: number): void {
    const m = this.items.find((x) => x.id === id);
    if (m) {
      m.text = "";
      m.deleted = true;
    }
  }

  /** id of the oldest message held, or lastId + 1 when empty */
  firstId(): number {
    return this.items[0]?.id ?? this.lastId + 1;
  }

  latest(n: number): ChatMessage[] {
    return n <= 0 ? [] : this.items.slice(-n);
  }

  /** Messages after `since` when the ring holds all of them (null when some are older than the ring). */
  after(since: number): ChatMessage[] | null {
    if (since + 1 < this.firstId() && since < this.lastId) return null;
    return this.items.filter((m) => m.id > since);
  }

  get size(): number {
    return this.items.length;
  }
}
