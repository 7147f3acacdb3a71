import { describe, expect, it } from "vitest";
import { makeEvent } from "../../../shared/envelope.ts";
import { join, upgrade, tokenFor } from "../../test/clients.ts";
import { createStream, env, newUser } from "../../test/streams.ts";
import { STREAM_OWNER_HEADER } from "./room-owner.ts";

const started = (streamId: string, roomId: string) =>
  makeEvent("stream.started", { streamId, roomId, nodeId: "node-a", app: "live", resumed: false }, { source: "media-node", subject: streamId });

describe("the owner of an API stream moderates its room", () => {
  it("before the first broadcast (the room named after the stream): delete and ban; another broadcaster may not", async () => {
    const owner = newUser("owner");
    const s = await createStream(owner);
    const caster = await join(s.roomId, owner, { role: "broadcaster" });
    const other = await join(s.roomId, newUser("other-caster"), { role: "broadcaster" });
    const troll = newUser("troll");
    const t = await join(s.roomId, troll);
    t.send({ type: "send", text: "spam" });
    const spam = (await caster.next("message")).message;

    other.send({ type: "delete", messageId: spam.id });
    expect(await other.next("error")).toMatchObject({ code: "forbidden", ref: "delete" });

    caster.send({ type: "delete", messageId: spam.id });
    expect(await t.next("deleted")).toMatchObject({ messageId: spam.id, by: owner });
    caster.send({ type: "ban", userId: troll });
    expect(await other.next("moderation", (f) => f.action === "ban")).toMatchObject({ userId: troll, by: owner });
    caster.close();
    other.close();
  });

  it("of a stream following a room its token grants, once the room's state names the stream", async () => {
    const owner = newUser("owner");
    const roomId = newUser("launch-room");
    const s = await createStream(owner, { roomId }, [roomId]);
    expect(s.roomId).toBe(roomId);
    await env.Room.getByName(roomId).applyEvent(started(s.id, roomId));
    const caster = await join(roomId, owner, { role: "broadcaster" });
    const viewer = await join(roomId, newUser("viewer"));
    viewer.send({ type: "send", text: "hi" });
    const msg = (await caster.next("message")).message;
    caster.send({ type: "delete", messageId: msg.id });
    expect(await viewer.next("deleted")).toMatchObject({ messageId: msg.id, by: owner });
    caster.close();
    viewer.close();
  });

  it("a client cannot claim ownership with the room's header, nor the owner's id with another role", async () => {
    const owner = newUser("owner");
    const s = await createStream(owner);
    const troll = newUser("troll");
    const res = await upgrade(`/parties/room/${s.roomId}`, { token: await tokenFor(troll), headers: { [STREAM_OWNER_HEADER]: "1" } });
    expect(res.status).toBe(101);
    res.webSocket!.accept();
    const member = await join(s.roomId, owner, { role: "member" });
    const victim = await join(s.roomId, newUser("victim"));
    victim.send({ type: "send", text: "hello" });
    const msg = (await member.next("message")).message;
    res.webSocket!.send(JSON.stringify({ type: "delete", messageId: msg.id }));
    member.send({ type: "delete", messageId: msg.id });
    expect(await member.next("error")).toMatchObject({ code: "forbidden", ref: "delete" });
    // The forged header's delete was refused too: the message is still there for a newcomer.
    const late = await join(s.roomId, newUser("late"));
    expect(late.welcome.messages).toEqual([expect.objectContaining({ id: msg.id, text: "hello" })]);
    res.webSocket!.close();
    member.close();
    victim.close();
    late.close();
  });
});
