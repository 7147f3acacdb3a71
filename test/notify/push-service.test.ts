// The local push service the tests and the benchmark push to checks what a real one checks: a push signed with
// the subscription's VAPID key and encrypted for it is taken and decrypted; a token from another key, a token
// that claims the right key without its signature, a wrong audience, a missing TTL and a changed body are refused.
// The pushes are made by the edge's own sending code (it is Web Crypto only, so it runs in Node too).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendPush, vapidAuthorization } from "../../edge/src/notify/push-send.ts";
import { encryptPushPayload } from "../../edge/src/notify/web-push-crypto.ts";
import { generateVapidKeys } from "../../shared/vapid-keys.ts";
import { type PushService, startPushService } from "../helpers/push-service.ts";

let push: PushService;
let vapid: { subject: string; publicKey: string; privateKey: string };
beforeAll(async () => {
  push = await startPushService();
  vapid = { subject: "mailto:ops@pulsecast.test", ...(await generateVapidKeys()) };
});
afterAll(() => push?.stop());

const req = (id: string) => ({ payload: JSON.stringify({ id, title: "t" }), ttlS: 60, urgency: "normal" as const, topic: "t0" });

async function raw(endpoint: string, headers: Record<string, string>, body: Uint8Array<ArrayBuffer>): Promise<number> {
  const res = await fetch(endpoint, { method: "POST", headers, body });
  await res.body?.cancel();
  return res.status;
}

describe("local push service", () => {
  it("takes a push signed and encrypted for the subscription, and decrypts it", async () => {
    const { hash, ...sub } = await push.subscribe(vapid.publicKey);
    const target = { endpoint: sub.endpoint, p256dh: sub.keys.p256dh, auth: sub.keys.auth };
    expect(await sendPush(target, req("p-1"), vapid, 5000)).toEqual({ kind: "ok", status: 201 });
    expect(await sendPush(target, req("p-2"), vapid, 5000)).toEqual({ kind: "ok", status: 201 });
    expect(push.received.filter((p) => p.hash === hash).map((p) => JSON.parse(p.payload).id)).toEqual(["p-1", "p-2"]);
  });

  it("refuses another key's token, a forged signature, a wrong audience, no TTL and a changed body", async () => {
    const { hash, ...sub } = await push.subscribe(vapid.publicKey);
    const endpoint = new URL(sub.endpoint);
    const body = await encryptPushPayload(sub.keys.p256dh, sub.keys.auth, new TextEncoder().encode('{"id":"x"}'));
    const good = await vapidAuthorization(endpoint, vapid);
    const base = { ttl: "60", "content-encoding": "aes128gcm" };
    const refusedBefore = push.refusals.length;

    const other = { subject: vapid.subject, ...(await generateVapidKeys()) };
    expect(await raw(sub.endpoint, { ...base, authorization: await vapidAuthorization(endpoint, other) }, body)).toBe(400);
    // the other key's token presented as ours: the signature does not verify with k
    const otherToken = /t=([^,]+)/.exec(await vapidAuthorization(endpoint, other))![1]!;
    expect(await raw(sub.endpoint, { ...base, authorization: `vapid t=${otherToken}, k=${vapid.publicKey}` }, body)).toBe(400);
    // our key, another service's audience
    expect(await raw(sub.endpoint, { ...base, authorization: await vapidAuthorization(new URL("https://push.example.test/x"), vapid) }, body)).toBe(400);
    expect(await raw(sub.endpoint, { "content-encoding": "aes128gcm", authorization: good }, body)).toBe(400);
    const changed = body.slice();
    changed[changed.length - 1]! ^= 1;
    expect(await raw(sub.endpoint, { ...base, authorization: good }, changed)).toBe(400);

    expect(push.refusals.slice(refusedBefore).map((r) => r.reason)).toEqual([
      "k is not the key this subscription was made with",
      "JWT signature does not verify with k",
      expect.stringMatching(/^JWT aud https:\/\/push\.example\.test is not https:\/\/127\.0\.0\.1:\d+$/),
      "TTL undefined is not a number of seconds",
      expect.stringMatching(/^payload does not decrypt/),
    ]);
    expect(push.received.filter((p) => p.hash === hash)).toEqual([]);
    expect(await raw(sub.endpoint, { ...base, authorization: good }, body)).toBe(201);
  });

  it("answers 410 for an expired subscription and can answer late", async () => {
    const a = await push.subscribe(vapid.publicKey);
    push.expire(a.hash);
    expect(await sendPush({ endpoint: a.endpoint, p256dh: a.keys.p256dh, auth: a.keys.auth }, req("gone"), vapid, 5000)).toEqual({ kind: "gone", status: 410 });

    const b = await push.subscribe(vapid.publicKey);
    push.answerLate(b.hash, 1, 800);
    const started = Date.now();
    const answer = sendPush({ endpoint: b.endpoint, p256dh: b.keys.p256dh, auth: b.keys.auth }, req("late"), vapid, 5000);
    // delivered at once, answered later
    await expect.poll(() => push.received.some((p) => p.hash === b.hash)).toBe(true);
    expect(await answer).toEqual({ kind: "ok", status: 201 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(750);
    // a sender that gives up before the answer: the request ends without one, the outcome unknown
    push.answerLate(b.hash, 1, 2000);
    expect(await sendPush({ endpoint: b.endpoint, p256dh: b.keys.p256dh, auth: b.keys.auth }, req("gave-up"), vapid, 300)).toMatchObject({ kind: "retry", unknown: true });
    expect(push.received.filter((p) => p.hash === b.hash).map((p) => JSON.parse(p.payload).id)).toEqual(["late", "gave-up"]);
  });
});
