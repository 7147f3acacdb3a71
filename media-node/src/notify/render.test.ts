import { describe, expect, it } from "vitest";
import { renderEmail } from "./render.ts";
import { classifySendError } from "./transport.ts";

const base = { emailId: "eml_1", userId: "u1", to: "u1@example.test", unsubscribeUrl: "https://edge.test/notifications/unsubscribe?u=u1&s=abc" };

describe("renderEmail", () => {
  it("one notification: its title as subject, text and escaped HTML, one-click unsubscribe headers", () => {
    const mail = renderEmail({ ...base, notifications: [{ notificationId: "n1", kind: "media.ready", title: "Ready\r\nBcc: x@evil.test", body: "<b>clip</b>", url: "https://app.test/v/1?a=1&b=2", at: 1 }] });
    expect(mail.subject).toBe("Ready Bcc: x@evil.test"); // no header injection through a title
    expect(mail.text).toContain("<b>clip</b>\nhttps://app.test/v/1?a=1&b=2");
    expect(mail.text).toContain(`Stop these emails: ${base.unsubscribeUrl}`);
    expect(mail.html).toContain("&lt;b&gt;clip&lt;/b&gt;");
    expect(mail.html).toContain('href="https://app.test/v/1?a=1&amp;b=2"');
    expect(mail.headers).toMatchObject({ "List-Unsubscribe": `<${base.unsubscribeUrl}>`, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click" });
    expect(mail.messageId).toBe("<eml_1@pulsecast.invalid>");
  });

  it("several: a digest", () => {
    const mail = renderEmail({ ...base, notifications: [1, 2].map((i) => ({ notificationId: `n${i}`, kind: "k", title: `T${i}`, at: i })) });
    expect(mail.subject).toBe("2 new notifications");
    expect(mail.text).toMatch(/T1[\s\S]*T2/);
  });
});

describe("classifySendError", () => {
  it("4xx replies and connection errors are retried, 5xx are final", () => {
    expect(classifySendError(Object.assign(new Error("busy"), { responseCode: 451 })).kind).toBe("retry");
    expect(classifySendError(Object.assign(new Error("no such user"), { responseCode: 550 })).kind).toBe("permanent");
    expect(classifySendError(Object.assign(new Error("connect ECONNREFUSED"), { code: "ESOCKET" })).kind).toBe("retry");
  });
});
