import { z } from "zod";
import { url, userId } from "./common.ts";

export const notificationRequested = z.object({
  notificationId: z.string().min(1).max(128),
  userId,
  title: z.string().min(1).max(200),
  body: z.string().max(2000).optional(),
  url: url.optional(),
  kind: z.string().max(64).optional(),
  data: z.record(z.string(), z.unknown()).optional(),
});

/** How a notification reaches a user: open sockets of the inbox, Web Push to their devices, or email. */
export const NOTIFICATION_CHANNELS = ["socket", "push", "email"] as const;

/**
 * What one channel's attempt came to. `delivered`: reached at least one socket or device, or the SMTP server
 * accepted the mail; `stored` (socket): nobody was connected, it waits in the inbox; `skipped`: not attempted
 * (read meanwhile, opted out, no device, no address: `reason` says which); `expired`: every device's
 * subscription was gone (404/410) and is removed; `failed`: refused for good or out of retries.
 */
export const NOTIFICATION_OUTCOMES = ["delivered", "stored", "skipped", "expired", "failed"] as const;

/** The answer to a notification, one per channel per notification (its id derives from both). */
export const notificationSent = z.object({
  notificationId: z.string().min(1).max(128),
  userId,
  channel: z.enum(NOTIFICATION_CHANNELS),
  outcome: z.enum(NOTIFICATION_OUTCOMES),
  /** socket: open connections it reached (0 = stored) */
  connections: z.number().int().nonnegative().optional(),
  /** push: devices whose push service took it */
  devices: z.number().int().nonnegative().optional(),
  /** email: the email (one message, possibly a digest) it went out in */
  emailId: z.string().max(128).optional(),
  reason: z.string().max(500).optional(),
});

/** One notification inside an email request. */
export const emailItem = z.object({
  notificationId: z.string().min(1).max(128),
  kind: z.string().max(64),
  title: z.string().min(1).max(200),
  body: z.string().max(2000).optional(),
  url: url.optional(),
  at: z.number().int().nonnegative(),
});

/**
 * The inbox asks the notifier for one email: one notification, or a digest of several that became due together
 * (or while the user's rate limit held them back). The notifier answers each with a notification.sent (email).
 */
export const notificationEmail = z.object({
  /** names this email; a redelivery carries the same id and is not sent again */
  emailId: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/),
  userId,
  to: z.email().max(254),
  notifications: z.array(emailItem).min(1).max(50),
  /** one-click unsubscribe (RFC 8058): GET shows a confirmation, POST unsubscribes */
  unsubscribeUrl: url,
});
