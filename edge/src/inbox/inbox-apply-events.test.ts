import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { makeEvent } from "../../../shared/envelope.ts";
import { env, newUser, notificationEvent, openClient } from "../../test/clients.ts";

// Inbox.applyEvents: the batch RPC of the event ingress. Every event applied once, in one transaction,
// per-event outcomes in input order, frames after the commit in input order with the unread count each
// notification had right after its own insert.

async function ledgerHas(user: string, id: string): Promise<boolean> {
  return runInDurableObject(env.Inbox.getByName(user), (_i, state) => state.storage.sql.exec("SELECT 1 FROM applied_events WHERE id = ?", id).toArray().length > 0);
}

describe("Inbox.applyEvents", () => {
  it("stores and delivers a batch once, in order, and reports each event", async () => {
    const user = newUser("batch");
    const inbox = env.Inbox.getByName(user);
    const phone = await openClient(user);
    await phone.next("welcome");

    const [n1, n2, n3] = ["one", "two", "three"].map((title) => notificationEvent(user, { title }));
    const notMine = notificationEvent("somebody-else");
    const progress = makeEvent("media.progress", { mediaId: "m1", ownerId: user, stage: "transcode", percent: 40 }, { source: "media-node/n", subject: "media/m1" });
    const sameNotification = notificationEvent(user, { notificationId: n1!.data.notificationId, title: "one again" });
    const outcomes = await inbox.applyEvents([n1!, notMine, n2!, n1!, progress, sameNotification, n3!]);
    expect(outcomes).toEqual([
      { id: n1!.id, applied: true, connections: 1 },
      { id: notMine.id, applied: false, connections: 0, error: expect.stringMatching(/reached the inbox of/) },
      { id: n2!.id, applied: true, connections: 1 },
      { id: n1!.id, applied: false, connections: 0 },
      { id: progress.id, applied: true, connections: 1 },
      // a fresh event id for a notification already kept
      { id: sameNotification.id, applied: false, connections: 0 },
      { id: n3!.id, applied: true, connections: 1 },
    ]);
    const frames = [await phone.next("notification"), await phone.next("notification")];
    expect(frames.map((f) => [f.notification.title, f.unread])).toEqual([
      ["one", 1],
      ["two", 2],
    ]);
    expect(await phone.next("progress")).toMatchObject({ mediaId: "m1", percent: 40 });
    expect(await phone.next("notification")).toMatchObject({ notification: { title: "three" }, unread: 3 });
    expect(await inbox.unread()).toBe(3);
    expect(await ledgerHas(user, notMine.id)).toBe(false);

    // The same batch again changes nothing.
    expect((await inbox.applyEvents([n1!, n2!, n3!])).map((o) => o.applied)).toEqual([false, false, false]);
    expect(await inbox.unread()).toBe(3);
    phone.close();
  });

  it("counts no connections when the user is offline, and keeps everything for the next connect", async () => {
    const user = newUser("batch-offline");
    const events = [1, 2, 3].map((n) => notificationEvent(user, { title: `n${n}` }));
    expect(await env.Inbox.getByName(user).applyEvents(events)).toEqual(events.map((e) => ({ id: e.id, applied: true, connections: 0 })));
    const client = await openClient(user);
    const welcome = await client.next("welcome");
    expect(welcome.unread).toBe(3);
    expect(welcome.notifications.map((n) => n.title)).toEqual(["n3", "n2", "n1"]);
    client.close();
  });
});
