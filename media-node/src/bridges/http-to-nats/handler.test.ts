import { describe, expect, it } from "vitest";
import { type Envelope, makeEvent } from "../../../../shared/envelope.ts";
import { signWebhook } from "../../../../shared/signing/webhooks.ts";
import type { Stored } from "../../bus/publish.ts";
import { handleEvent } from "./handler.ts";

const SECRET = "test-bridge-ingress-secret-0123456789";
const chat = () => makeEvent("chat.message", { roomId: "lobby", messageId: 1, userId: "u1", text: "hi", at: 1 }, { source: "edge", subject: "room/lobby" });

function deps(stored: Envelope[] = [], fail?: Error) {
  const seen = new Set<string>();
  return {
    secrets: [SECRET],
    toleranceS: 300,
    async store(event: Envelope): Promise<Stored> {
      if (fail) throw fail;
      const duplicate = seen.has(event.id);
      seen.add(event.id);
      if (!duplicate) stored.push(event);
      return { stream: "EVENTS", seq: stored.length, duplicate };
    },
  };
}

async function signed(body: string, id: string, secret = SECRET, ts?: number) {
  return { headers: { ...(await signWebhook(secret, id, body, ts)) }, body };
}

describe("HTTP->NATS handler", () => {
  it("stores a signed accepted event and answers 202; the same request again is 200 duplicate, stored once", async () => {
    const stored: Envelope[] = [];
    const d = deps(stored);
    const e = chat();
    const req = await signed(JSON.stringify(e), e.id);
    expect(await handleEvent(req, d)).toMatchObject({ status: 202, body: { ok: true, duplicate: false } });
    expect(await handleEvent(req, d)).toMatchObject({ status: 200, body: { ok: true, duplicate: true } });
    expect(stored.map((s) => s.id)).toEqual([e.id]);
  });

  it("answers 503 with Retry-After when JetStream does not store it", async () => {
    const e = chat();
    const reply = await handleEvent(await signed(JSON.stringify(e), e.id), deps([], new Error("TIMEOUT")));
    expect(reply.status).toBe(503);
    expect(reply.headers).toEqual({ "retry-after": "1" });
    expect(reply.body.message).toMatch(/did not store the event: TIMEOUT/);
  });

  it("refuses a webhook-id that is not the event id", async () => {
    const e = chat();
    const reply = await handleEvent(await signed(JSON.stringify(e), "evt_other"), deps());
    expect(reply).toMatchObject({ status: 400, body: { error: "id-mismatch" } });
  });

  it("checks the signature before looking at the body", async () => {
    const reply = await handleEvent({ headers: {}, body: "{not json" }, deps());
    expect(reply).toMatchObject({ status: 401, body: { error: "missing-headers" } });
  });

  it("answers 500 (not 401) when it has no secret configured", async () => {
    const e = chat();
    const reply = await handleEvent(await signed(JSON.stringify(e), e.id), { ...deps(), secrets: [] });
    expect(reply).toMatchObject({ status: 500, body: { error: "no-secret" } });
  });
});
