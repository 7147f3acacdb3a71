// The frames on the links inside a big room (shard -> relay -> coordinator and back), and the pure sums done on
// the way up. Up: a shard gathers what its clients send and forwards it in few frames (chat in one frame per
// short window, reactions as counts per window, presence as a report per summary period). Down: the
// coordinator's frames are the clients' frames, serialized once, passed on unchanged by relays and shards;
// the few control frames for shards only are told apart by their `k` key.
import type { PresenceEntry, PresenceSummary } from "../../../shared/protocol/room.ts";
import { SUMMARY_CHATTERS_MAX, SUMMARY_FEATURED_MAX } from "../../../shared/protocol/room.ts";
import type { Role } from "../auth/claims.ts";

/** What a client asked for that only the coordinator can do: chat, live comments, moderation. */
export type UpItem =
  | { t: "send"; userId: string; name?: string; text: string; clientId?: string }
  | { t: "comment"; userId: string; name?: string; text: string }
  | { t: "delete"; by: string; connId: string; messageId: number }
  | { t: "kick" | "ban"; by: string; connId: string; userId: string; reason?: string }
  | { t: "unban"; by: string; connId: string; userId: string };

export interface PresenceReport {
  connections: number;
  users: number;
  byRole: Record<Role, number>;
  /** broadcasters and moderators present (bounded) */
  featured: PresenceEntry[];
}

export type UpFrame =
  | { k: "up"; items: UpItem[] }
  | { k: "react"; counts: Record<string, number> }
  /** `from`: the reporting shard or relay; a report replaces that part's previous one */
  | { k: "presence"; from: string; report: PresenceReport };

/** Control frames for shards (everything else going down is a client frame). */
export type DownControl = { k: "err"; connId: string; code: string; message: string; ref?: string };

export const emptyByRole = (): Record<Role, number> => ({ viewer: 0, member: 0, moderator: 0, broadcaster: 0 });

/** Sum of reports (a relay's report upward, the coordinator's totals). Pure. */
export function sumReports(reports: Iterable<PresenceReport>): PresenceReport {
  const out: PresenceReport = { connections: 0, users: 0, byRole: emptyByRole(), featured: [] };
  for (const r of reports) {
    out.connections += r.connections;
    out.users += r.users;
    for (const role of Object.keys(out.byRole) as Role[]) out.byRole[role] += r.byRole[role] ?? 0;
    for (const f of r.featured) if (out.featured.length < SUMMARY_FEATURED_MAX) out.featured.push(f);
  }
  return out;
}

/** Whether a user is named in big-room presence. */
export const isFeatured = (role: Role) => role === "broadcaster" || role === "moderator";

export interface Chatter {
  userId: string;
  name?: string;
  at: number;
}

/** Remembers who chatted last (newest first, each user once). Pure update. */
export function noteChatter(list: Chatter[], c: Chatter): Chatter[] {
  return [c, ...list.filter((x) => x.userId !== c.userId)].slice(0, SUMMARY_CHATTERS_MAX);
}

export function summaryOf(report: PresenceReport, chatters: Chatter[], lastMessageId: number, at: number): PresenceSummary {
  return { users: report.users, connections: report.connections, byRole: report.byRole, featured: report.featured, recentChatters: chatters, lastMessageId, at };
}

/** Parses a link frame; null for anything that is not one (logged by the caller). */
export function parseUp(text: string): UpFrame | null {
  try {
    const v = JSON.parse(text) as { k?: unknown };
    return v && (v.k === "up" || v.k === "react" || v.k === "presence") ? (v as UpFrame) : null;
  } catch {
    return null;
  }
}
