import { describe, expect, it } from "vitest";
import { createLogger } from "../log.ts";
import { createKeyChecker, EdgeUnreachableError, type EdgeVerdict, type KeyCheckClient, KeyRegistry } from "./key-check.ts";
import { KeyWatch } from "./key-watch.ts";

const quiet = createLogger({ level: "error", sink: () => {} });

describe("KeyRegistry: the offline rule", () => {
  it("accepts what it knows nothing against, and refuses what the edge said was replaced, disabled or deleted", () => {
    const r = new KeyRegistry();
    expect(r.offline("str_a", 1)).toBeNull();
    r.learn("str_a", { ok: true, keyVersion: 2 });
    expect(r.offline("str_a", 1)).toMatch(/replaced by 2/);
    expect(r.offline("str_a", 2)).toBeNull();
    r.learn("str_a", { ok: false, reason: "revoked-key", keyVersion: 3 });
    expect(r.offline("str_a", 2)).toMatch(/replaced by 3/);
    r.learn("str_b", { ok: false, reason: "disabled", keyVersion: 1 });
    expect(r.offline("str_b", 1)).toMatch(/disabled/);
    r.learn("str_b", { ok: true, keyVersion: 1 });
    expect(r.offline("str_b", 1)).toBeNull();
    r.learn("str_c", { ok: false, reason: "deleted" });
    expect(r.offline("str_c", 9)).toMatch(/deleted/);
  });
});

/** A client whose answers the test sets; `down` makes the edge unreachable. */
function scriptedEdge(): KeyCheckClient & { state: Map<string, EdgeVerdict>; down: boolean; calls: number } {
  const edge = {
    state: new Map<string, EdgeVerdict>(),
    down: false,
    calls: 0,
    async check(keys: { streamId: string; kv: number }[]): Promise<EdgeVerdict[]> {
      edge.calls++;
      if (edge.down) throw new EdgeUnreachableError("connect ECONNREFUSED");
      return keys.map(({ streamId, kv }) => {
        const v = edge.state.get(streamId) ?? { ok: false, reason: "unknown-stream" };
        if (v.ok && v.keyVersion !== kv) return { ok: false, reason: "revoked-key", keyVersion: v.keyVersion };
        return v;
      });
    },
  };
  return edge;
}

describe("createKeyChecker", () => {
  it("takes the edge's word when it answers and falls back to what it learned when it does not", async () => {
    const edge = scriptedEdge();
    const checker = createKeyChecker(edge, new KeyRegistry(), quiet);
    edge.state.set("str_a", { ok: true, keyVersion: 2 });
    expect(await checker.decide("str_a", 2)).toEqual({ ok: true, online: true });
    edge.state.set("str_r", { ok: true, keyVersion: 1, record: false });
    expect(await checker.decide("str_r", 1)).toEqual({ ok: true, online: true, record: false });
    edge.state.set("str_l", { ok: true, keyVersion: 1, record: true, latencyMode: "low" });
    expect(await checker.decide("str_l", 1)).toEqual({ ok: true, online: true, record: true, latency: "low" });
    expect(await checker.decide("str_a", 1)).toMatchObject({ ok: false, online: true, detail: expect.stringMatching(/revoked/) });
    edge.down = true;
    expect(await checker.decide("str_a", 1)).toMatchObject({ ok: false, online: false });
    expect(await checker.decide("str_a", 2)).toEqual({ ok: true, online: false });
    // Never heard of it: the signature (checked before) is all the node has.
    expect(await checker.decide("str_new", 1)).toEqual({ ok: true, online: false });
  });
});

describe("KeyWatch", () => {
  it("cuts a live publisher whose key was revoked, and nothing while the edge is down", async () => {
    const edge = scriptedEdge();
    edge.state.set("str_a", { ok: true, keyVersion: 1 });
    edge.state.set("str_b", { ok: true, keyVersion: 1 });
    const cut: string[] = [];
    const live = new Map([["str_a", 1], ["str_b", 1]]);
    const watch = new KeyWatch({
      client: edge,
      registry: new KeyRegistry(),
      intervalMs: 60_000,
      log: quiet,
      live: () => [...live].map(([streamId, kv]) => ({ streamId, kv })),
      async cut(streamId) {
        cut.push(streamId);
        live.delete(streamId);
      },
    });
    expect(await watch.tick()).toEqual([]);
    edge.state.set("str_a", { ok: true, keyVersion: 2 });
    edge.down = true;
    expect(await watch.tick()).toEqual([]);
    edge.down = false;
    expect(await watch.tick()).toEqual(["str_a"]);
    edge.state.set("str_b", { ok: false, reason: "disabled", keyVersion: 1 });
    expect(await watch.tick()).toEqual(["str_b"]);
    expect(cut).toEqual(["str_a", "str_b"]);
    await watch.stop();
  });
});
