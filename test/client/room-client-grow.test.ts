import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { RoomClient, type WebSocketCtor } from "../../shared/client/room-client.ts";
import { type EdgeServer, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import { waitFor } from "../helpers/wait.ts";

// RoomClient in Node against the real edge (wrangler dev) while its room grows big (ROOM_SHARD_AT is 4 here):
// the room closes every socket with 4010, the client reconnects to the same URL with ?since=, lands on a shard,
// switches to summary presence, and its chat list has every message once; a send in flight during the move is
// confirmed once.
describe("RoomClient in a room that grows big", () => {
  let edge: EdgeServer;
  const clients: RoomClient[] = [];
  const token = (sub: string, role = "member") => mintHs256(TEST_SECRETS.JWT_SECRET, { sub, claims: { name: sub, role } });

  beforeAll(async () => {
    edge = await startEdge({ ROOM_SHARD_AT: "4", ROOM_SUMMARY_MS: "200" });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await edge?.stop();
  });

  it("follows the room to its shards without losing or repeating a message", async () => {
    const room = `grow-${Date.now().toString(36)}`;
    const open = async (user: string, role?: string) => {
      const c = new RoomClient({ baseUrl: edge.url, roomId: room, token: await token(user, role), WebSocket: WebSocket as unknown as WebSocketCtor });
      clients.push(c);
      await c.connect();
      return c;
    };
    const alice = await open("alice");
    const bob = await open("bob");
    const carol = await open("carol", "viewer");
    expect([alice, bob, carol].map((c) => c.mode)).toEqual(["small", "small", "small"]);
    expect(carol.presenceCount).toBe(3);
    await alice.send("before");
    await waitFor("everyone has the first message", () => [bob, carol].every((c) => c.messages.length === 1));

    // The fourth connection makes the room grow; alice's send is in flight while it moves.
    const moved = Promise.all([alice, bob, carol].map((c) => c.once("welcome")));
    const dave = await open("dave", "viewer");
    const during = alice.send("during");
    await moved;
    expect((await during).text).toBe("during");
    await waitFor("dave moved too", () => dave.mode === "big");
    const everyone = [alice, bob, carol, dave];
    expect(everyone.map((c) => c.mode)).toEqual(["big", "big", "big", "big"]);
    await waitFor("summary counts everyone", () => everyone.every((c) => c.summary?.users === 4 && c.presenceCount === 4));

    await bob.send("after");
    await waitFor("everyone has the three messages", () => everyone.every((c) => c.messages.length === 3));
    for (const c of everyone) {
      expect(c.messages.map((m) => [m.id, m.text])).toEqual([
        [1, "before"],
        [2, "during"],
        [3, "after"],
      ]);
    }
  });
});
