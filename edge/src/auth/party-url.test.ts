import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { env, tokenFor, upgrade } from "../../test/clients.ts";
import { normalizePartyUrl } from "./party-guard.ts";

describe("party names in the URL", () => {
  it("decodes a %-encoded name that is valid for its party, and nothing else", () => {
    const at = (path: string, party: "room" | "inbox") => normalizePartyUrl(new URL(`http://edge${path}`), party)?.pathname;
    expect(at("/parties/inbox/auth0%7Cabc", "inbox")).toBe("/parties/inbox/auth0|abc");
    expect(at("/parties/room/show%3A42/history", "room")).toBe("/parties/room/show:42/history");
    expect(at("/parties/room/plain", "room")).toBe("/parties/room/plain");
    // A decoded name that would escape its segment stays encoded, for the guard to refuse.
    expect(at("/parties/room/a%2Fb", "room")).toBe("/parties/room/a%2Fb");
    // The URL parser itself resolves %2E%2E as `..` before any code of ours runs: no name is left.
    expect(new URL("http://edge/parties/room/%2E%2E").pathname).toBe("/parties/");
    expect(normalizePartyUrl(new URL("http://edge/parties/room/bad%E0%A4%A"), "room")).toBeNull();
  });

  it("routes an encoded user id to the same inbox object the event ingress reaches by id", async () => {
    const token = await tokenFor("auth0|abc");
    const res = await upgrade("/parties/inbox/auth0%7Cabc", { token });
    expect(res.status).toBe(101);
    res.webSocket!.accept();
    const sockets = await runInDurableObject(env.Inbox.getByName("auth0|abc"), (_instance, state) => state.getWebSockets().length);
    expect(sockets).toBe(1);
    res.webSocket!.close(1000, "done");
  });

  it("refuses an encoded name that decodes to a path trick, and a malformed escape", async () => {
    const token = await tokenFor("alice");
    const trick = await upgrade("/parties/room/a%2F..%2Fb", { token });
    expect(trick.status).toBe(400);
    expect(((await trick.json()) as { error: { code: string } }).error.code).toBe("invalid_room_id");
    const malformed = await upgrade("/parties/room/bad%E0%A4%A", { token });
    expect(malformed.status).toBe(400);
    const dotdot = await upgrade("/parties/room/%2E%2E", { token });
    expect(dotdot.status).toBe(404);
  });
});
