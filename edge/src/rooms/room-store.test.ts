import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { newId } from "../../../shared/ids.ts";
import { env } from "../../test/clients.ts";
import { RoomStore } from "./room-store.ts";

describe("RoomStore history bound", () => {
  it("keeps the newest historyMax messages even when the object is rebuilt between every message", async () => {
    // A hibernating room is a new RoomStore at nearly every wake: the bound must not depend on an in-memory count.
    await runInDurableObject(env.Room.getByName(newId("store")), (_instance, state) => {
      for (let i = 1; i <= 12; i++) new RoomStore(state.storage).append("u1", undefined, `m${i}`, i, 5);
      const texts = new RoomStore(state.storage).latest(100).map((m) => m.text);
      expect(texts).toEqual(["m8", "m9", "m10", "m11", "m12"]);
    });
  });
});

describe("RoomStore room info", () => {
  it("keeps the info it read or wrote, and reads storage again after a rolled-back write is forgotten", async () => {
    await runInDurableObject(env.Room.getByName(newId("store")), (_instance, state) => {
      const store = new RoomStore(state.storage);
      expect(store.info("r1")).toEqual({ roomId: "r1" });
      const first = { streamId: "s1", status: "live" as const, updatedAt: 1 };
      store.setInfo({ roomId: "r1", stream: first });
      expect(store.info("r1")).toBe(store.info("r1"));
      expect(Object.isFrozen(store.info("r1"))).toBe(true);
      expect(() =>
        state.storage.transactionSync(() => {
          store.setInfo({ roomId: "r1", stream: { ...first, status: "ended" } });
          throw new Error("storage broke");
        }),
      ).toThrow("storage broke");
      store.forgetInfo();
      expect(store.info("r1")).toEqual({ roomId: "r1", stream: first });
      // A store built later (the object woke again) reads what was committed.
      expect(new RoomStore(state.storage).info("r1")).toEqual({ roomId: "r1", stream: first });
    });
  });
});
