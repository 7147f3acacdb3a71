// How the notifier hands mail over: an EmailTransport, so SMTP (nodemailer, pooled) can later be replaced by a
// provider's API without touching the consumer. Whether a failure is worth a retry is decided here, from the SMTP
// reply code: 4xx and connection trouble are temporary, 5xx are final.
import nodemailer from "nodemailer";
import type { NotifierSettings } from "../settings/notifier.ts";
import type { RenderedEmail } from "./render.ts";

export interface EmailTransport {
  send(mail: RenderedEmail): Promise<{ accepted: boolean; response: string }>;
  close(): void;
}

export type SendFailure = { kind: "retry" | "permanent"; reason: string };

/** What a failed send means: temporary (try again later) or final. */
export function classifySendError(error: unknown): SendFailure {
  const e = error as { responseCode?: number; code?: string; message?: string };
  const reason = `${e.code ? `${e.code}: ` : ""}${e.message ?? String(error)}`.slice(0, 400);
  if (typeof e.responseCode === "number") return { kind: e.responseCode >= 500 ? "permanent" : "retry", reason };
  // No SMTP reply: the server could not be reached, TLS failed, or the connection dropped: all worth another try.
  return { kind: "retry", reason };
}

export function smtpTransport(cfg: Pick<NotifierSettings, "smtpHost" | "smtpPort" | "smtpSecure" | "smtpRequireTls" | "smtpUser" | "smtpPassword" | "smtpPoolSize" | "emailFrom">): EmailTransport {
  const transporter = nodemailer.createTransport({
    pool: true,
    maxConnections: cfg.smtpPoolSize,
    host: cfg.smtpHost,
    port: cfg.smtpPort,
    secure: cfg.smtpSecure,
    requireTLS: !cfg.smtpSecure && cfg.smtpRequireTls,
    ...(cfg.smtpUser ? { auth: { user: cfg.smtpUser, pass: cfg.smtpPassword } } : {}),
  });
  return {
    async send(mail) {
      const info = await transporter.sendMail({
        from: cfg.emailFrom,
        to: mail.to,
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
        headers: mail.headers,
        messageId: mail.messageId,
      });
      return { accepted: info.accepted.length > 0, response: info.response };
    },
    close() {
      transporter.close();
    },
  };
}
