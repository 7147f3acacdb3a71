import { toBase64Url, utf8 } from "../../../shared/encoding.ts";

/**
 * The id of the notification.sent that answers a notification: derived from the user and notification id,
 * so whatever path stores a notification (a redelivered request, the requester's fresh event for the same
 * notification, which the inbox also refuses to store twice) yields the same answer id, and JetStream keeps one.
 */
export async function sentEventId(userId: string, notificationId: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", utf8(`notification.sent\n${userId}\n${notificationId}`));
  return `evt_sent_${toBase64Url(new Uint8Array(digest)).slice(0, 32)}`;
}
