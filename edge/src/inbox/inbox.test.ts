import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { makeEvent } from "../../../shared/envelope.ts";
import { NotificationStore } from "./store.ts";
import { connectDirect, env, newUser, notificationEvent, openClient } from "../../test/clients.ts";

describe("Inbox object", () => {
  it("delivers a notification to every open connection of the user at once", async () => {
    const user = newUser("multi");
    const phone = await openClient(user);
    const laptop = await openClient(user);
    expect((await phone.next("welcome")).unread).toBe(0);
    expect((await laptop.next("welcome")).user.userId).toBe(user);

    const result = await env.Inbox.getByName(user).applyEvent(notificationEvent(user, { title: "New follower" }));
    expect(result).toEqual({ applied: true, connections: 2 });
    for (const device of [phone, laptop]) {
      const frame = await device.next("notification");
      expect(frame.notification).toMatchObject({ title: "New follower", kind: "mention", read: false, seq: 1 });
      expect(frame.unread).toBe(1);
    }
    phone.close();
    laptop.close();
  });

  it("keeps notifications for a user who is offline and hands them over on the next connect", async () => {
    const user = newUser("offline");
    const inbox = env.Inbox.getByName(user);
    expect(await inbox.applyEvent(notificationEvent(user, { title: "first" }))).toEqual({ applied: true, connections: 0 });
    expect(await inbox.applyEvent(notificationEvent(user, { title: "second" }))).toEqual({ applied: true, connections: 0 });

    const client = await openClient(user);
    const welcome = await client.next("welcome");
    expect(welcome.unread).toBe(2);
    expect(welcome.more).toBe(false);
    expect(welcome.notifications.map((n) => n.title)).toEqual(["second", "first"]); // newest first
    expect(welcome.user).toEqual({ userId: user, name: `Name of ${user}` });
    client.close();
  });

  it("welcomes with the newest unread up to the limit and says there is more", async () => {
    const user = newUser("many-unread");
    const inbox = env.Inbox.getByName(user);
    for (let i = 1; i <= 25; i++) await inbox.applyEvent(notificationEvent(user, { title: `n${i}` }));
    const client = await openClient(user);
    const welcome = await client.next("welcome");
    expect(welcome.unread).toBe(25);
    expect(welcome.more).toBe(true);
    expect(welcome.notifications.length).toBeLessThan(25);
    expect(welcome.notifications[0]!.title).toBe("n25");
    // the rest, by paging on from the oldest one the welcome held
    const oldest = welcome.notifications[welcome.notifications.length - 1]!;
    client.send({ type: "list", before: oldest.seq, limit: 100, unreadOnly: true });
    const rest = await client.next("list");
    expect(welcome.notifications.length + rest.notifications.length).toBe(25);
    expect(rest.nextBefore).toBeUndefined();
    client.close();
  });

  it("applies a repeated event id once, and a repeated notification id once", async () => {
    const user = newUser("dup");
    const inbox = env.Inbox.getByName(user);
    const client = await openClient(user);
    await client.next("welcome");

    const event = notificationEvent(user, { title: "once" });
    expect(await inbox.applyEvent(event)).toEqual({ applied: true, connections: 1 });
    expect(await inbox.applyEvent(event)).toEqual({ applied: false, connections: 0 });
    expect(await inbox.applyEvent(event)).toEqual({ applied: false, connections: 0 });
    // the same notification retried by its requester under a fresh event id
    const retried = notificationEvent(user, { notificationId: event.data.notificationId, title: "once" });
    expect(await inbox.applyEvent(retried)).toEqual({ applied: false, connections: 0 });
    await inbox.applyEvent(notificationEvent(user, { title: "after" }));

    // Frames arrive in order: if a duplicate had been delivered it would come before "after".
    expect((await client.next("notification")).notification.title).toBe("once");
    expect((await client.next("notification")).notification.title).toBe("after");
    expect((await inbox.list()).notifications.map((n) => n.title)).toEqual(["after", "once"]);
    client.close();
  });

  it("counts unread, marks read by frame, and tells every device", async () => {
    const user = newUser("read");
    const inbox = env.Inbox.getByName(user);
    for (const title of ["a", "b", "c"]) await inbox.applyEvent(notificationEvent(user, { title }));
    const tablet = await openClient(user);
    const phone = await openClient(user);
    const welcome = await tablet.next("welcome");
    await phone.next("welcome");
    expect(welcome.unread).toBe(3);
    const [c, b] = welcome.notifications;

    tablet.send({ type: "read", ids: [c!.id] });
    for (const device of [tablet, phone]) expect(await device.next("read")).toEqual({ type: "read", ids: [c!.id], unread: 2 });
    expect(await inbox.unread()).toBe(2);

    phone.send({ type: "read", upTo: b!.seq });
    for (const device of [tablet, phone]) expect(await device.next("read")).toMatchObject({ upTo: b!.seq, unread: 0 });

    tablet.send({ type: "list", limit: 10 });
    const page = await tablet.next("list");
    expect(page.notifications.map((n) => [n.title, n.read])).toEqual([["c", true], ["b", true], ["a", true]]);
    tablet.close();
    phone.close();
  });

  it("marks all read through the method, and a no-op tells nobody", async () => {
    const user = newUser("all");
    const inbox = env.Inbox.getByName(user);
    await inbox.applyEvent(notificationEvent(user));
    await inbox.applyEvent(notificationEvent(user));
    const client = await openClient(user);
    await client.next("welcome");
    expect(await inbox.markRead({ all: true })).toEqual({ marked: 2, unread: 0 });
    expect(await client.next("read")).toEqual({ type: "read", upTo: 2, unread: 0 });
    expect(await inbox.markRead({ all: true })).toEqual({ marked: 0, unread: 0 });
    expect(await inbox.markRead({ ids: ["no-such-id"] })).toEqual({ marked: 0, unread: 0 });
    // The next frame is the next notification, not a read frame for the no-ops.
    await inbox.applyEvent(notificationEvent(user, { title: "later" }));
    expect((await client.next("notification")).notification.title).toBe("later");
    client.close();
  });

  it("delivers media events for the owner: ready/failed stored, progress live only", async () => {
    const user = newUser("media");
    const inbox = env.Inbox.getByName(user);
    const client = await openClient(user);
    await client.next("welcome");
    const opts = { source: "media-node/test", subject: "media/m1" };

    const progress = makeEvent("media.progress", { mediaId: "m1", ownerId: user, stage: "transcode", percent: 55 }, opts);
    expect(await inbox.applyEvent(progress)).toEqual({ applied: true, connections: 1 });
    expect(await client.next("progress")).toEqual({ type: "progress", mediaId: "m1", stage: "transcode", percent: 55 });
    expect(await inbox.applyEvent(progress)).toEqual({ applied: false, connections: 0 });

    const ready = makeEvent("media.ready", { mediaId: "m1", ownerId: user, playbackUrl: "https://cdn.test/m1/master.m3u8", durationS: 30 }, opts);
    expect(await inbox.applyEvent(ready)).toEqual({ applied: true, connections: 1 });
    expect((await client.next("notification")).notification).toMatchObject({ kind: "media.ready", url: "https://cdn.test/m1/master.m3u8" });
    const failed = makeEvent("media.failed", { mediaId: "m2", ownerId: user, reason: "no video stream" }, opts);
    await inbox.applyEvent(failed);
    expect((await client.next("notification")).notification).toMatchObject({ kind: "media.failed", body: "no video stream" });

    expect((await inbox.list()).notifications.map((n) => n.kind)).toEqual(["media.failed", "media.ready"]);
    client.close();
  });

  it("refuses events that are not for this inbox, changing nothing", async () => {
    const user = newUser("wrong");
    const inbox = env.Inbox.getByName(user);
    const failure = (p: Promise<unknown>) => p.then(() => "resolved", (e: Error) => e.message);
    expect(await failure(inbox.applyEvent(notificationEvent("somebody-else")))).toMatch(/reached the inbox of/);
    const stream = makeEvent("stream.live", { streamId: "s1", nodeId: "n1", playbackUrl: "https://cdn.test/s1.m3u8", renditions: [] }, { source: "t", subject: "stream/s1" });
    expect(await failure(inbox.applyEvent(stream))).toMatch(/does not take 'stream.live'/);
    expect(await inbox.list()).toEqual({ notifications: [], unread: 0 });
  });

  it("answers bad frames with error frames and keeps the connection", async () => {
    const user = newUser("badframe");
    const client = await openClient(user);
    const welcome = await client.next("welcome");
    client.send("this is not json");
    expect(await client.next("error")).toMatchObject({ code: "bad_json" });
    client.send({ type: "explode" });
    expect(await client.next("error")).toMatchObject({ code: "unknown_type" });
    client.send({ type: "read", ids: ["a"], upTo: 3 });
    expect(await client.next("error")).toMatchObject({ code: "bad_frame", message: expect.stringContaining("exactly one") });
    client.send({ type: "read", ids: ["x".repeat(welcome.limits.maxFrameBytes)] });
    expect(await client.next("error")).toMatchObject({ code: "frame_too_large" });
    client.ws.send(new Uint8Array([1, 2, 3]));
    expect(await client.next("error")).toMatchObject({ code: "bad_json" });
    // still connected and served
    client.send({ type: "list" });
    expect(await client.next("list")).toEqual({ type: "list", notifications: [], unread: 0 });
    client.close();
  });

  it("rate-limits client frames: error frames with retryAfterMs, then close 1008 on continued flooding", async () => {
    const user = newUser("flood");
    const client = await openClient(user);
    const { ratePerS } = (await client.next("welcome")).limits;
    for (let i = 0; i < ratePerS * 10; i++) client.send({ type: "list", limit: 1 });
    const frames = await client.rest();
    expect((await client.closed).code).toBe(1008);
    const limited = frames.filter((f) => f.type === "error" && f.code === "rate_limited");
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]).toMatchObject({ retryAfterMs: expect.any(Number) });
    // the burst was served before the limit bit
    expect(frames.filter((f) => f.type === "list").length).toBeGreaterThanOrEqual(ratePerS * 2);
  });

  it("refuses a connection over the per-user limit with an error frame and close 1008", async () => {
    const user = newUser("many");
    const first = await openClient(user);
    const max = (await first.next("welcome")).limits.maxConnections;
    const others = [];
    for (let i = 1; i < max; i++) {
      const c = await openClient(user);
      await c.next("welcome");
      others.push(c);
    }
    const extra = await openClient(user);
    expect(await extra.next("error")).toMatchObject({ code: "too_many_connections" });
    expect((await extra.closed).code).toBe(1008);
    // the refused one does not count: a notification reaches exactly the `max` open ones
    expect(await env.Inbox.getByName(user).applyEvent(notificationEvent(user))).toEqual({ applied: true, connections: max });
    for (const c of [first, ...others]) c.close();
  });

  it("refuses an upgrade without a verified user, or with another user's identity", async () => {
    const user = newUser("guard");
    const anonymous = await connectDirect(user, null);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ error: { code: "unauthenticated" } });
    const intruder = await connectDirect(user, "mallory");
    expect(intruder.status).toBe(403);
    expect(await intruder.json()).toMatchObject({ error: { code: "inbox_forbidden" } });
  });

  it("keeps notifications and hibernated connections across eviction", async () => {
    const user = newUser("evict");
    const inbox = env.Inbox.getByName(user);
    await inbox.applyEvent(notificationEvent(user, { title: "before" }));
    const client = await openClient(user);
    await client.next("welcome");
    await evictDurableObject(inbox);
    expect(await inbox.applyEvent(notificationEvent(user, { title: "after" }))).toEqual({ applied: true, connections: 1 });
    expect((await client.next("notification")).notification).toMatchObject({ title: "after", seq: 2 });
    expect((await inbox.list()).unread).toBe(2);
    client.close();
  });

  it("bounds storage: past the limit the oldest read go first, then the oldest unread", async () => {
    const user = newUser("prune");
    await runInDurableObject(env.Inbox.getByName(user), (_instance, state) => {
      const store = new NotificationStore(state.storage, 3);
      // The inbox prunes once per batch; here each insert is a batch of one.
      const add = (id: string) => {
        const n = store.insert({ id, kind: "k", title: id, eventId: `evt_${id}` });
        store.prune();
        return n;
      };
      add("n1");
      add("n2");
      add("n3");
      store.markRead({ ids: ["n2"] });
      add("n4"); // over by one: n2 (read) goes, unread n1 stays
      expect(store.page().notifications.map((n) => n.id)).toEqual(["n4", "n3", "n1"]);
      add("n5"); // all unread: the oldest unread goes
      expect(store.page().notifications.map((n) => n.id)).toEqual(["n5", "n4", "n3"]);
      expect(add("n5")).toBeNull();
      // seqs are never reused after pruning
      expect(store.page().notifications[0]!.seq).toBe(5);
      // An insert rolled back with its transaction leaves the store's running count high; pruning then counts
      // for real and deletes nothing.
      expect(() =>
        state.storage.transactionSync(() => {
          store.insert({ id: "n6", kind: "k", title: "n6", eventId: "evt_n6" });
          throw new Error("rolled back");
        }),
      ).toThrow("rolled back");
      store.prune();
      expect(store.page().notifications.map((n) => n.id)).toEqual(["n5", "n4", "n3"]);
    });
  });
});
