// Ids of the events that answer a notification, derived (not random) so that every path that answers the same
// notification on the same channel (a redelivered request, a retried alarm, a second notifier replica) yields the
// same id, and JetStream's duplicate window keeps one. Web-standard only: the edge and the notifier both use it.
import { toBase64Url, utf8 } from "./encoding.ts";

export type AnswerChannel = "socket" | "push" | "email";

/** The id of the notification.sent that answers `notificationId` of `userId` on `channel`. */
export async function sentEventId(userId: string, notificationId: string, channel: AnswerChannel = "socket"): Promise<string> {
  // The socket answer keeps the id it had before push and email existed, so an answer re-sent across an upgrade
  // is still recognized as the same event.
  const channelPart = channel === "socket" ? "" : `\n${channel}`;
  const digest = await crypto.subtle.digest("SHA-256", utf8(`notification.sent\n${userId}\n${notificationId}${channelPart}`));
  return `evt_sent_${toBase64Url(new Uint8Array(digest)).slice(0, 32)}`;
}
