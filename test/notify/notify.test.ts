// Offline channels end to end, every part real: the edge (wrangler dev) pushes from its inboxes to a local push
// service that checks VAPID and decrypts the payload, asks for email over the bus, and the notifier process
// mails through a real SMTP server. Every wait is on an observed event (a push received, a mail accepted, a
// notification.sent stored), never a fixed sleep.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeEvent } from "../../shared/envelope.ts";
import { waitFor } from "../helpers/wait.ts";
import { openInbox } from "../helpers/ws-client.ts";
import { type NotifyHarness, type Sent, startNotifyHarness } from "./harness.ts";

let h: NotifyHarness;
beforeAll(async () => {
  h = await startNotifyHarness();
}, 180_000);
afterAll(async () => {
  await h?.stop();
});

const sentFor = async (id: string, channel?: Sent["channel"]) => (await h.sent()).filter((s) => s.notificationId === id && (!channel || s.channel === channel));
const waitSent = (id: string, channel: Sent["channel"]) => waitFor(`notification.sent ${channel} for ${id}`, async () => (await sentFor(id, channel))[0], 60_000, 100);

describe("Web Push", () => {
  it("pushes to an offline user at once: decrypted payload, TTL/Urgency/Topic, one answer per channel", async () => {
    const user = "push-offline";
    const { hash } = await h.subscribe(user);
    const res = await h.notify(user, { notificationId: "n-push-1", title: "Ana mentioned you", body: "in #general", url: "http://127.0.0.1:8787/rooms/general" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ applied: true, connections: 0 });

    const push = await waitFor("the push", () => h.push.received.find((p) => p.hash === hash), 30_000);
    expect(JSON.parse(push.payload)).toEqual({ id: "n-push-1", kind: "mention", title: "Ana mentioned you", body: "in #general", url: "http://127.0.0.1:8787/rooms/general", at: expect.any(Number) });
    expect(push.headers).toMatchObject({ ttl: "3600", urgency: "high", encoding: "aes128gcm" });
    expect(push.headers.topic).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(push.headers.authorization).toMatch(new RegExp(`^vapid t=[\\w-]+\\.[\\w-]+\\.[\\w-]+, k=${h.vapidPublicKey}$`));

    expect(await waitSent("n-push-1", "push")).toMatchObject({ outcome: "delivered", devices: 1 });
    // The internal API answers like a bus event: the socket answer too, stored in the same transaction.
    expect(await waitSent("n-push-1", "socket")).toMatchObject({ outcome: "stored", connections: 0 });
    expect(await sentFor("n-push-1")).toHaveLength(2);
  });

  it("a connected user: the socket first, the push only when still unread after the delay; read in time, no push", async () => {
    const user = "push-online";
    const { hash } = await h.subscribe(user);
    const socket = await openInbox(`${h.edge.wsUrl}/parties/inbox/${user}`, await h.token(user));
    try {
      await socket.next("welcome");
      const posted = Date.now();
      expect(await (await h.notify(user, { notificationId: "n-online-1", title: "unread" })).json()).toEqual({ applied: true, connections: 1 });
      expect((await socket.next("notification")).notification.id).toBe("n-online-1");
      expect(await waitSent("n-online-1", "socket")).toMatchObject({ outcome: "delivered", connections: 1 });
      const push = await waitFor("the delayed push", () => h.push.received.find((p) => p.hash === hash), 30_000);
      expect(push.at - posted).toBeGreaterThanOrEqual(1500); // NOTIFY_PUSH_DELAY_MS

      await h.notify(user, { notificationId: "n-online-2", title: "read at once" });
      await socket.next("notification");
      expect((await h.api(user, "POST", "/inbox/read", { ids: ["n-online-2"] })).status).toBe(200);
      expect(await waitSent("n-online-2", "push")).toMatchObject({ outcome: "skipped", reason: "read before it was due" });
      expect(h.push.received.filter((p) => p.hash === hash)).toHaveLength(1);
    } finally {
      await socket.close();
    }
  });

  it("removes a subscription its push service answers 410 for, and reports the push expired", async () => {
    const user = "push-expired";
    const { hash } = await h.subscribe(user);
    h.push.expire(hash);
    await h.notify(user, { notificationId: "n-410", title: "gone device" });
    expect(await waitSent("n-410", "push")).toMatchObject({ outcome: "expired", devices: 0 });
    expect(h.push.answers.filter((a) => a.hash === hash).map((a) => a.status)).toEqual([410]);
    const list = (await (await h.api(user, "GET", "/push/subscriptions")).json()) as { subscriptions: unknown[] };
    expect(list.subscriptions).toEqual([]);
  });

  it("retries after 503 (with backoff) and delivers once", async () => {
    const user = "push-503";
    const { hash } = await h.subscribe(user);
    h.push.failNext(hash, 2, 503);
    await h.notify(user, { notificationId: "n-503", title: "try again" });
    expect(await waitSent("n-503", "push")).toMatchObject({ outcome: "delivered", devices: 1 });
    const statuses = h.push.answers.filter((a) => a.hash === hash);
    expect(statuses.map((a) => a.status)).toEqual([503, 503, 201]);
    // backoff: the retries are spread out, not fired back to back (base 200 ms, ±20%)
    expect(statuses[2]!.at - statuses[0]!.at).toBeGreaterThanOrEqual(400);
    expect(h.push.received.filter((p) => p.hash === hash)).toHaveLength(1);
  });

  it("a push answered after the run stopped waiting is not sent again: one delivery, one answer", async () => {
    const user = "push-late";
    const { hash } = await h.subscribe(user);
    // NOTIFY_PUSH_TIMEOUT_MS is 1000 here: the service takes the push at once and answers 2.5 s later.
    h.push.answerLate(hash, 1, 2500);
    await h.notify(user, { notificationId: "n-late", title: "slow service" });
    expect(await waitSent("n-late", "push")).toMatchObject({ outcome: "delivered", devices: 1 });
    expect(h.push.received.filter((p) => p.hash === hash).map((p) => JSON.parse(p.payload).id)).toEqual(["n-late"]);
    const mine = h.push.answers.filter((a) => a.hash === hash);
    expect(mine.map((a) => a.status)).toEqual([201]);
    // the answer came after the run had stopped waiting, and the edge still counted it
    expect(mine[0]!.at - h.push.received.find((p) => p.hash === hash)!.at).toBeGreaterThanOrEqual(2400);
    await h.notify(user, { notificationId: "n-late-marker", title: "after" });
    await waitSent("n-late-marker", "push");
    expect(await sentFor("n-late", "push")).toHaveLength(1);
    expect(h.push.received.filter((p) => p.hash === hash)).toHaveLength(2); // n-late once, the marker once
  });

  it("a push never answered is cancelled and sent again with the same id and Topic (a device shows it once)", async () => {
    const user = "push-abandoned";
    const { hash } = await h.subscribe(user);
    // NOTIFY_PUSH_ABANDON_MS is 4000 here: the first request gets no answer in time, so its outcome is unknown.
    h.push.answerLate(hash, 1, 6000);
    await h.notify(user, { notificationId: "n-abandoned", title: "no answer" });
    expect(await waitSent("n-abandoned", "push")).toMatchObject({ outcome: "delivered", devices: 1 });
    const copies = h.push.received.filter((p) => p.hash === hash);
    expect(copies).toHaveLength(2);
    expect(copies.map((p) => JSON.parse(p.payload).id)).toEqual(["n-abandoned", "n-abandoned"]);
    expect(copies[1]!.headers.topic).toBe(copies[0]!.headers.topic);
    expect(copies[1]!.at - copies[0]!.at).toBeGreaterThanOrEqual(4000);
    // what a device shows: one notification per id (the service worker's rule, tested in Chromium in test/web/push-sw.test.ts)
    expect(new Set(copies.map((p) => JSON.parse(p.payload).id)).size).toBe(1);
    expect(await sentFor("n-abandoned", "push")).toHaveLength(1);
  }, 90_000);

  it("delivers to every device of a user and refuses a payload over the limit at the API", async () => {
    const user = "push-two-devices";
    const a = await h.subscribe(user);
    const b = await h.subscribe(user);
    await h.notify(user, { notificationId: "n-two", title: "both" });
    expect(await waitSent("n-two", "push")).toMatchObject({ outcome: "delivered", devices: 2 });
    expect(h.push.received.filter((p) => p.hash === a.hash || p.hash === b.hash)).toHaveLength(2);

    const big = await h.notify(user, { notificationId: "n-big", title: "big", body: "é".repeat(1999) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe("push_payload_too_large");
  });

  it("waits for the end of the user's quiet hours before pushing", async () => {
    const user = "push-quiet";
    const { hash } = await h.subscribe(user);
    // Quiet from the current UTC minute until the next minute boundary that is at least 15 s away.
    const now = new Date();
    const hm = (d: Date) => `${String(d.getUTCHours()).padStart(2, "0")}:${String(d.getUTCMinutes()).padStart(2, "0")}`;
    const end = new Date(Math.ceil((now.getTime() + 15_000) / 60_000) * 60_000);
    const prefs = { timeZone: "UTC", quietHours: { start: hm(now), end: hm(end) } };
    expect((await h.api(user, "PUT", "/notifications/preferences", prefs)).status).toBe(200);
    await h.notify(user, { notificationId: "n-quiet", title: "shh" });
    const push = await waitFor("the push after quiet hours", () => h.push.received.find((p) => p.hash === hash), 120_000, 200);
    expect(push.at).toBeGreaterThanOrEqual(end.getTime());
    expect(await waitSent("n-quiet", "push")).toMatchObject({ outcome: "delivered" });
  }, 150_000);
});

describe("email", () => {
  it("mails an opted-in kind after the delay: headers, text and HTML, unsubscribe link that works", async () => {
    const user = "mail-one";
    const prefs = { email: "mail-one@example.test", kinds: { "media.ready": { email: true, push: false } } };
    expect((await h.api(user, "PUT", "/notifications/preferences", prefs)).status).toBe(200);
    await h.notify(user, { notificationId: "n-mail-1", kind: "media.ready", title: "Your video is ready", body: "Holiday <clip>", url: "http://127.0.0.1:8787/v/1" });
    // a kind not opted into is never mailed
    await h.notify(user, { notificationId: "n-mail-no", kind: "mention", title: "not by mail" });

    const mail = await waitFor("the email", () => h.smtp.messages.find((m) => (m.to as { text: string }).text === "mail-one@example.test"), 30_000);
    expect(mail.subject).toBe("Your video is ready");
    expect(mail.from?.value[0]).toMatchObject({ name: "Pulsecast Test", address: "notify@pulsecast.test" });
    expect(mail.text).toContain("Holiday <clip>");
    expect(mail.text).toContain("http://127.0.0.1:8787/v/1");
    expect(mail.html).toContain("Holiday &lt;clip&gt;");
    expect(mail.html).toContain('<a href="http://127.0.0.1:8787/v/1">Your video is ready</a>');
    // the raw header lines, as a mail client reads them
    const header = (name: string) => mail.headerLines.find((l) => l.key === name)?.line.slice(name.length + 1).trim();
    expect(header("list-unsubscribe-post")).toBe("List-Unsubscribe=One-Click");
    const link = header("list-unsubscribe")?.match(/^<(.+)>$/)?.[1];
    expect(link).toMatch(/^http:\/\/127\.0\.0\.1:8787\/notifications\/unsubscribe\?u=mail-one&s=/);
    expect(mail.text).toContain(link);

    expect(await waitSent("n-mail-1", "email")).toMatchObject({ outcome: "delivered", emailId: expect.stringMatching(/^eml_/) });
    expect(await sentFor("n-mail-no", "email")).toEqual([]);

    // The one-click unsubscribe (RFC 8058 POST) turns email off; a tampered link is refused.
    const path = new URL(link!);
    expect((await fetch(`${h.edge.url}${path.pathname}${path.search}x`, { method: "POST" })).status).toBe(403);
    expect((await fetch(`${h.edge.url}${path.pathname}${path.search}`)).status).toBe(200); // a GET changes nothing
    expect(((await (await h.api(user, "GET", "/notifications/preferences")).json()) as { kinds: Record<string, { email?: boolean }> }).kinds["media.ready"]?.email).toBe(true);
    expect((await fetch(`${h.edge.url}${path.pathname}${path.search}`, { method: "POST" })).status).toBe(200);
    const after = (await (await h.api(user, "GET", "/notifications/preferences")).json()) as { defaults: { email: boolean }; kinds: Record<string, { email?: boolean }> };
    expect(after.defaults.email).toBe(false);
    expect(after.kinds["media.ready"]?.email).toBe(false);
  });

  it("sends one digest when many arrive at once, then holds the next email for the per-user interval", async () => {
    const user = "mail-digest";
    const to = "digest@example.test";
    await h.api(user, "PUT", "/notifications/preferences", { email: to, defaults: { push: false, email: true } });
    for (const i of [1, 2, 3]) await h.notify(user, { notificationId: `n-dig-${i}`, title: `Item ${i}` });
    const mine = () => h.smtp.messages.filter((m) => (m.to as { text: string }).text === to);
    const digest = await waitFor("the digest", () => mine()[0], 30_000);
    expect(digest.subject).toBe("3 new notifications");
    for (const i of [1, 2, 3]) expect(digest.text).toContain(`Item ${i}`);
    const sentAt = Date.now();
    for (const i of [1, 2, 3]) expect(await waitSent(`n-dig-${i}`, "email")).toMatchObject({ outcome: "delivered" });
    const ids = new Set((await h.sent()).filter((s) => s.notificationId.startsWith("n-dig-") && s.channel === "email").map((s) => s.emailId));
    expect(ids.size).toBe(1);

    await h.notify(user, { notificationId: "n-dig-4", title: "Item 4" });
    const second = await waitFor("the next email", () => mine()[1], 30_000);
    expect(second.subject).toBe("Item 4");
    // NOTIFY_EMAIL_MIN_INTERVAL_MS = 5000 (less the time between the first send and our seeing it)
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(4000);
    expect(mine()).toHaveLength(2);
  });

  it("retries when the SMTP server refuses for now (451)", async () => {
    const user = "mail-451";
    const to = "retry@example.test";
    await h.api(user, "PUT", "/notifications/preferences", { email: to, defaults: { push: false, email: true } });
    h.smtp.refuseNext(1, 451);
    await h.notify(user, { notificationId: "n-451", title: "eventually" });
    expect(await waitSent("n-451", "email")).toMatchObject({ outcome: "delivered" });
    expect(h.smtp.messages.filter((m) => (m.to as { text: string }).text === to)).toHaveLength(1);
    expect(h.smtp.refused).toBeGreaterThanOrEqual(1);
  });
});

describe("exactly once", () => {
  it("an event delivered twice (and a fresh event for the same notification) is pushed once and mailed once", async () => {
    const user = "twice";
    const to = "twice@example.test";
    const { hash } = await h.subscribe(user);
    await h.api(user, "PUT", "/notifications/preferences", { email: to, defaults: { push: true, email: true } });
    const event = makeEvent("notification.requested", { notificationId: "n-twice", userId: user, title: "only once" }, { source: "media-node/test", subject: `user/${user}` });
    expect((await h.deliver(event)).status).toBe(200);
    expect((await h.deliver(event)).status).toBe(200);
    const fresh = makeEvent("notification.requested", { notificationId: "n-twice", userId: user, title: "only once" }, { source: "media-node/test", subject: `user/${user}` });
    expect((await h.deliver(fresh)).status).toBe(200);

    await waitSent("n-twice", "push");
    await waitSent("n-twice", "email");
    await waitFor("the email", () => h.smtp.messages.find((m) => (m.to as { text: string }).text === to), 30_000);
    // Whatever else is still on its way would have been in the same alarm runs; a second round of the bus proves it:
    // a marker notification sent afterwards arrives, and still only one of each came for n-twice.
    await h.notify(user, { notificationId: "n-twice-marker", title: "marker" });
    await waitSent("n-twice-marker", "email");
    expect(h.push.received.filter((p) => p.hash === hash && JSON.parse(p.payload).id === "n-twice")).toHaveLength(1);
    expect(h.smtp.messages.filter((m) => (m.to as { text: string }).text === to && m.text?.includes("only once"))).toHaveLength(1);
    const answers = await sentFor("n-twice");
    expect(answers.map((a) => a.channel).sort()).toEqual(["email", "push", "socket"]);
  });
});
