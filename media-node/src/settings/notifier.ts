// Settings of the email notifier: the SMTP server it hands mail to, the sender, and how it consumes
// `notification.email` from JetStream.

import { bool, int, port, secret, text, type SettingsOf } from "../../../shared/settings/settings.ts";

export const notifierSettings = {
  smtpHost: text("SMTP_HOST", "127.0.0.1", "SMTP server (relay or provider) the notifier sends through", { pattern: /^[A-Za-z0-9.:\-[\]]+$/ }),
  smtpPort: port("SMTP_PORT", 587, "SMTP port: 587 (STARTTLS), 465 (implicit TLS with SMTP_SECURE=true) or a local catch-all's"),
  smtpSecure: bool("SMTP_SECURE", false, "implicit TLS from the first byte (port 465); otherwise STARTTLS when the server offers it"),
  smtpRequireTls: bool("SMTP_REQUIRE_TLS", true, "refuse to send unless the connection is upgraded with STARTTLS (false only for a local catch-all)"),
  smtpUser: text("SMTP_USER", undefined, "SMTP login, with SMTP_PASSWORD (unset: no authentication)", { optional: true }),
  smtpPassword: secret("SMTP_PASSWORD", "password of SMTP_USER", { optional: true, minLength: 1 }),
  smtpPoolSize: int("SMTP_POOL_SIZE", 5, "SMTP connections kept open and used in parallel", { min: 1, max: 100 }),
  emailFrom: text("EMAIL_FROM", "Pulsecast <notifications@pulsecast.invalid>", "the From: of every notification email"),
  consumer: text("NOTIFIER_CONSUMER", "notifier", "durable JetStream consumer of `notification.email` every notifier replica shares", { pattern: /^[A-Za-z0-9_-]{1,64}$/ }),
  concurrency: int("NOTIFIER_CONCURRENCY", 16, "emails one replica sends at once", { min: 1, max: 1024 }),
  ackWaitMs: int("NOTIFIER_ACK_WAIT_MS", 60_000, "an email request whose replica died (no ack for this long) is delivered to another, ms", { min: 1000, max: 3_600_000 }),
  maxAttempts: int("NOTIFIER_MAX_ATTEMPTS", 5, "tries per email while the SMTP server answers 4xx or cannot be reached; then `failed`", { min: 1, max: 50 }),
  retryBaseMs: int("NOTIFIER_RETRY_BASE_MS", 60_000, "first retry delay of a temporarily refused email, ms; doubles per try", { min: 1 }),
  retryMaxMs: int("NOTIFIER_RETRY_MAX_MS", 1_800_000, "longest retry delay, ms", { min: 1 }),
} as const;

export type NotifierSettings = SettingsOf<typeof notifierSettings>;
