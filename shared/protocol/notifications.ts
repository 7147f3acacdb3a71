// The notification settings API (`/push/*`, `/notifications/preferences`): request and answer shapes, shared by
// the edge and any client. Web-standard only.
import { z } from "zod";
import { fromBase64Url } from "../encoding.ts";

/** A notification kind as preferences name it (`mention`, `media.ready`, `stream.live`, ...). */
const kindName = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, "a kind is 1-64 characters of [A-Za-z0-9_.:-]");
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "expected HH:MM (24 h)");

/** Whether the runtime knows `tz` as an IANA time zone. */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export const channelChoice = z.strictObject({ push: z.boolean().optional(), email: z.boolean().optional() });

/** What PUT /notifications/preferences takes and GET answers. Unset kinds follow `defaults`. */
export const notificationPreferences = z.strictObject({
  /** IANA zone the quiet hours are in */
  timeZone: z.string().max(64).refine(isTimeZone, "unknown IANA time zone").default("UTC"),
  /** no push and no email between start and end (local time; may wrap midnight); null = none */
  quietHours: z.strictObject({ start: hhmm, end: hhmm }).refine((q) => q.start !== q.end, "start and end must differ").nullable().default(null),
  /** where emails go; null = no email */
  email: z.email().max(254).nullable().default(null),
  defaults: z.strictObject({ push: z.boolean(), email: z.boolean() }).default({ push: true, email: false }),
  kinds: z.record(kindName, channelChoice).refine((k) => Object.keys(k).length <= 64, "at most 64 kinds").default({}),
});
export type NotificationPreferences = z.output<typeof notificationPreferences>;

export const DEFAULT_PREFERENCES: NotificationPreferences = notificationPreferences.parse({});

/** Whether `kind` goes to push and to email for a user with `prefs`. */
export function channelsFor(prefs: NotificationPreferences, kind: string): { push: boolean; email: boolean } {
  const k = prefs.kinds[kind] ?? {};
  return { push: k.push ?? prefs.defaults.push, email: (k.email ?? prefs.defaults.email) && prefs.email !== null };
}

/** Minutes since local midnight of `at` in `timeZone`. */
export function localMinutes(at: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat("en-US", { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).formatToParts(new Date(at));
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value ?? 0);
  return (get("hour") % 24) * 60 + get("minute");
}

const toMinutes = (s: string) => Number(s.slice(0, 2)) * 60 + Number(s.slice(3, 5));

/**
 * When the quiet hours around `now` end (ms since epoch), or null when `now` is outside them. Minute precision;
 * across a DST change the answer can be an hour off, and the caller checks again when it wakes.
 */
export function quietUntil(prefs: Pick<NotificationPreferences, "quietHours" | "timeZone">, now: number): number | null {
  const q = prefs.quietHours;
  if (!q) return null;
  const cur = localMinutes(now, prefs.timeZone);
  const start = toMinutes(q.start);
  const end = toMinutes(q.end);
  const inside = start < end ? cur >= start && cur < end : cur >= start || cur < end;
  if (!inside) return null;
  const minutesLeft = (end - cur + 1440) % 1440;
  const intoMinute = now % 60_000;
  return now - intoMinute + minutesLeft * 60_000;
}

/** The browser's `PushSubscription.toJSON()`, as POST /push/subscriptions takes it. */
export const pushSubscriptionJson = z.object({
  endpoint: z.string().max(2048).refine((s) => URL.canParse(s), "endpoint must be a URL"),
  expirationTime: z.number().nullable().optional(),
  keys: z.object({
    p256dh: z.string().refine((s) => {
      const b = fromBase64Url(s.replace(/=+$/, ""));
      return b !== null && b.length === 65 && b[0] === 4;
    }, "p256dh must be base64url of an uncompressed P-256 point (65 bytes)"),
    auth: z.string().refine((s) => fromBase64Url(s.replace(/=+$/, ""))?.length === 16, "auth must be base64url of 16 bytes"),
  }),
});
export type PushSubscriptionJson = z.output<typeof pushSubscriptionJson>;

/** A stored subscription as the API shows it (keys are not echoed back). */
export interface PushSubscriptionView {
  id: string;
  endpoint: string;
  expirationTime: number | null;
  createdAt: number;
  lastOkAt: number | null;
}
