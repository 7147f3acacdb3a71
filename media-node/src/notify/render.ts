// The email a `notification.email` becomes: subject, plain-text and HTML bodies, and the headers mail clients use
// to offer "unsubscribe" (RFC 2369 List-Unsubscribe, RFC 8058 one-click POST). Pure: tests read the result whole.
import type { EventData } from "../../../shared/events/index.ts";

export type EmailRequest = EventData<"notification.email">;

export interface RenderedEmail {
  to: string;
  subject: string;
  text: string;
  html: string;
  headers: Record<string, string>;
  /** RFC 5322 Message-ID, derived from the email id: the same request always makes the same message */
  messageId: string;
}

const escapeHtml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");

/** Header values are one line: a title with line breaks must not start a header of its own. */
const oneLine = (s: string) => s.replace(/[\r\n]+/g, " ").trim();

export function renderEmail(req: EmailRequest, opts: { messageDomain?: string } = {}): RenderedEmail {
  const items = req.notifications;
  const digest = items.length > 1;
  const subject = oneLine(digest ? `${items.length} new notifications` : items[0]!.title);
  const textItems = items.map((n) => [n.title, n.body, n.url].filter((x): x is string => x !== undefined && x !== "").join("\n"));
  const text = [
    digest ? `You have ${items.length} new notifications:` : "",
    textItems.join("\n\n---\n\n"),
    "",
    "--",
    `Stop these emails: ${req.unsubscribeUrl}`,
  ]
    .filter((line, i) => i > 0 || line !== "")
    .join("\n");
  const htmlItems = items
    .map((n) => {
      const title = n.url ? `<a href="${escapeHtml(n.url)}">${escapeHtml(n.title)}</a>` : escapeHtml(n.title);
      return `<li><p><strong>${title}</strong></p>${n.body ? `<p>${escapeHtml(n.body).replace(/\n/g, "<br>")}</p>` : ""}</li>`;
    })
    .join("\n");
  const html = [
    "<!doctype html>",
    '<html><head><meta charset="utf-8"></head><body>',
    digest ? `<p>You have ${items.length} new notifications:</p>` : "",
    `<ul>\n${htmlItems}\n</ul>`,
    `<p style="font-size:small"><a href="${escapeHtml(req.unsubscribeUrl)}">Unsubscribe</a> from these emails.</p>`,
    "</body></html>",
  ]
    .filter(Boolean)
    .join("\n");
  return {
    to: req.to,
    subject,
    text,
    html,
    headers: {
      "List-Unsubscribe": `<${req.unsubscribeUrl}>`,
      "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
      "X-Pulsecast-Email-Id": req.emailId,
      // Bulk mail: auto-responders stay quiet.
      "Auto-Submitted": "auto-generated",
    },
    messageId: `<${req.emailId}@${opts.messageDomain ?? "pulsecast.invalid"}>`,
  };
}
