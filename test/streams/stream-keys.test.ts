// Stream keys from the Streams API checked by a media node's authorizer against the real edge (wrangler dev):
// rotation, disable and delete refuse keys at once; with the edge down the node applies its offline rule.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuthorizer, type PublishAuthorizer } from "../../media-node/src/ingest/authorize.ts";
import { createLogger } from "../../media-node/src/log.ts";
import { createKeyChecker, httpKeyCheckClient, KeyRegistry, withKeyCheck } from "../../media-node/src/streams/key-check.ts";
import { type EdgeServer, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { mintHs256 } from "../helpers/jwt.ts";

let edge: EdgeServer;
let owner: string;

beforeAll(async () => {
  edge = await startEdge();
  owner = await mintHs256(TEST_SECRETS.JWT_SECRET, { sub: "keys-owner", claims: { role: "broadcaster" } });
});
afterAll(async () => {
  await edge?.stop();
});

async function api(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${edge.url}${path}`, { method, headers: { authorization: `Bearer ${owner}`, "content-type": "application/json" }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
}

async function create(): Promise<{ id: string; key: string }> {
  const res = await api("POST", "/streams", {});
  expect(res.status).toBe(201);
  const s = (await res.json()) as { id: string; rtmp: { streamKey: string } };
  return { id: s.id, key: s.rtmp.streamKey };
}

/** What the RTMP ingest hands the authorizer for `rtmp://node/live/<streamKey>`. */
function publish(authorizer: PublishAuthorizer, streamKey: string) {
  const [name, query] = streamKey.split("?") as [string, string];
  return authorizer.verify({ app: "live", name, token: new URLSearchParams(query).get("token") ?? undefined });
}

function nodeAuthorizer(timeoutMs = 1500) {
  const log = createLogger({ level: "error", sink: () => {} });
  const client = httpKeyCheckClient({ edgeUrl: edge.url, internalToken: TEST_SECRETS.INTERNAL_API_TOKEN, timeoutMs });
  return withKeyCheck(createAuthorizer({ apps: ["live"], secret: TEST_SECRETS.PUBLISH_TOKEN_SECRET }), createKeyChecker(client, new KeyRegistry(), log));
}

describe("a media node's key check against the edge", () => {
  it("accepts the current key and refuses a rotated one, a disabled stream and a deleted one at once", async () => {
    const node = nodeAuthorizer();
    const s = await create();
    expect(await publish(node, s.key)).toMatchObject({ ok: true, claims: { sid: s.id, kv: 1, rec: true } });
    // Recording is the edge's setting, learned at publish time.
    await api("PATCH", `/streams/${s.id}`, { record: false });
    expect(await publish(node, s.key)).toMatchObject({ ok: true, claims: { rec: false } });
    const rotated = (await (await api("POST", `/streams/${s.id}/key`)).json()) as { rtmp: { streamKey: string } };
    expect(await publish(node, s.key)).toMatchObject({ ok: false, reason: "token-revoked", detail: expect.stringMatching(/version 1 was revoked/) });
    expect((await publish(node, rotated.rtmp.streamKey)).ok).toBe(true);
    await api("POST", `/streams/${s.id}/disable`);
    expect(await publish(node, rotated.rtmp.streamKey)).toMatchObject({ ok: false, reason: "token-revoked", detail: "the stream is disabled" });
    await api("POST", `/streams/${s.id}/enable`);
    expect((await publish(node, rotated.rtmp.streamKey)).ok).toBe(true);
    expect((await api("DELETE", `/streams/${s.id}`)).status).toBe(204);
    expect(await publish(node, rotated.rtmp.streamKey)).toMatchObject({ ok: false, reason: "token-revoked", detail: "the stream was deleted" });
  });

  it("still refuses a forged key without asking (the signature is checked first)", async () => {
    const s = await create();
    const forged = s.key.slice(0, -4) + (s.key.endsWith("AAAA") ? "BBBB" : "AAAA");
    expect(await publish(nodeAuthorizer(), forged)).toMatchObject({ ok: false, reason: "token-bad-signature" });
  });

  it("with the edge down: accepts keys it can verify, refuses the ones it learned were revoked", async () => {
    const node = nodeAuthorizer(800);
    const learned = await create();
    const unseen = await create();
    const rotated = (await (await api("POST", `/streams/${learned.id}/key`)).json()) as { rtmp: { streamKey: string } };
    // The node learns the rotation while the edge is up.
    expect((await publish(node, learned.key)).ok).toBe(false);
    await edge.process.stop();
    try {
      expect(await publish(node, learned.key)).toMatchObject({ ok: false, reason: "token-revoked", detail: expect.stringMatching(/learned from the edge/) });
      expect((await publish(node, rotated.rtmp.streamKey)).ok).toBe(true);
      // Never asked about: its signature is all the node has, and it holds.
      expect((await publish(node, unseen.key)).ok).toBe(true);
      const fresh = nodeAuthorizer(800);
      expect((await publish(fresh, learned.key)).ok).toBe(true);
    } finally {
      await edge.restart();
    }
    // Back online: the edge's word again.
    expect((await publish(node, learned.key)).ok).toBe(false);
  });
});
