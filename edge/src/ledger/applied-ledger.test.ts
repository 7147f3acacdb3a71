import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { newId } from "../../../shared/ids.ts";
import { APPLIED_EVENT_RETENTION_MS, AppliedLedger } from "./applied-ledger.ts";

// The ledger on a real Durable Object's SQLite storage (a room's, with a scratch table).

describe("AppliedLedger.applyManyOnce", () => {
  it("applies each id once, rolls back only the event whose effect threw, and keeps the rest", async () => {
    await runInDurableObject(env.Room.getByName(newId("ledger")), (_instance, state) => {
      const sql = state.storage.sql;
      sql.exec("CREATE TABLE IF NOT EXISTS effects (id TEXT NOT NULL)");
      const ledger = new AppliedLedger(state.storage);
      const items = [{ id: "a" }, { id: "b" }, { id: "a" }, { id: "c" }];
      const outcomes = ledger.applyManyOnce(items, (item) => {
        sql.exec("INSERT INTO effects (id) VALUES (?)", item.id);
        if (item.id === "b") throw new Error("b breaks after writing");
        return item.id.toUpperCase();
      });
      expect(outcomes).toEqual([{ applied: true, result: "A" }, { applied: false, error: new Error("b breaks after writing") }, { applied: false }, { applied: true, result: "C" }]);
      // b's write and its id were rolled back together; a and c are stored once each.
      expect(sql.exec<{ id: string }>("SELECT id FROM effects ORDER BY id").toArray().map((r) => r.id)).toEqual(["a", "c"]);
      expect(["a", "b", "c"].map((id) => ledger.has(id))).toEqual([true, false, true]);
      // b can be applied by a later attempt; a and c are duplicates now.
      expect(ledger.applyManyOnce([{ id: "a" }, { id: "b" }, { id: "c" }], () => null).map((o) => o.applied)).toEqual([false, true, false]);
    });
  });

  it("claimMany: one statement records a batch; fresh once per id; a throwing apply stores nothing", async () => {
    await runInDurableObject(env.Room.getByName(newId("ledger")), (_instance, state) => {
      const sql = state.storage.sql;
      sql.exec("CREATE TABLE IF NOT EXISTS effects (n INTEGER NOT NULL)");
      const ledger = new AppliedLedger(state.storage);
      expect(ledger.claimMany(["x"], () => null).fresh).toEqual([true]);
      const first = ledger.claimMany(["x", "y", "y", "z"], (fresh) => {
        sql.exec("INSERT INTO effects (n) VALUES (?)", fresh.filter(Boolean).length);
        return "done";
      });
      expect(first).toEqual({ fresh: [false, true, false, true], result: "done" });
      expect(() =>
        ledger.claimMany(["w", "v"], () => {
          sql.exec("INSERT INTO effects (n) VALUES (99)");
          throw new Error("storage broke");
        }),
      ).toThrow("storage broke");
      expect(sql.exec<{ n: number }>("SELECT n FROM effects").toArray().map((r) => r.n)).toEqual([2]);
      expect(["w", "v", "x", "y", "z"].map((id) => ledger.has(id))).toEqual([false, false, true, true, true]);
    });
  });
});

describe("AppliedLedger retention", () => {
  it("prunes expired ids on the first claim of a freshly built ledger (hibernating objects rarely claim many in one life)", async () => {
    await runInDurableObject(env.Room.getByName(newId("ledger")), (_instance, state) => {
      const now = Date.now();
      new AppliedLedger(state.storage).applyOnce("old", () => null, now - APPLIED_EVENT_RETENTION_MS - 1000);
      new AppliedLedger(state.storage).applyOnce("recent", () => null, now - 1000);
      const rebuilt = new AppliedLedger(state.storage);
      rebuilt.applyOnce("new", () => null, now);
      expect(["old", "recent", "new"].map((id) => rebuilt.has(id))).toEqual([false, true, true]);
    });
  });
});
