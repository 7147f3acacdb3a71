import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type LlAnnounce, type LlUpdate, parseAnnounce } from "../../../shared/llhls/announce.ts";
import { verifyWebhook } from "../../../shared/signing/webhooks.ts";
import { createLogger } from "../log.ts";
import { AnnounceRefusedError, EdgeAnnouncer } from "./announcer.ts";

const SECRET = "announce-test-secret-0123456789";
const quiet = createLogger({ level: "error", sink: () => {} });

/** A real HTTP server standing in for the edge: answers with `status(n)` for the n-th request (1-based). */
async function edge(status: (n: number) => number = () => 200, holdMs = 0) {
  const got: LlAnnounce[] = [];
  let n = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString();
      const ok = await verifyWebhook([SECRET], req.headers as Record<string, string>, body);
      const parsed = parseAnnounce(JSON.parse(body));
      const code = status(++n);
      if (ok.ok && parsed.ok && code === 200) got.push(parsed.announce);
      setTimeout(() => res.writeHead(ok.ok ? code : 401).end(code === 200 ? "{}" : "no"), holdMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  stops.push(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));
  return { url, got, requests: () => n };
}
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

const part = (msn: number, index: number, id: number): LlUpdate => ({ type: "part", rendition: "360p", msn, index, uri: `part${id}.m4s`, durationS: 0.333, independent: index === 0, map: "e0-init.mp4" });

describe("EdgeAnnouncer", () => {
  it("signs every request, keeps order, and sends what came up meanwhile in the next request", async () => {
    const e = await edge(() => 200, 50);
    const a = new EdgeAnnouncer({ edgeUrl: e.url, secrets: [SECRET], timeoutMs: 2000, log: quiet }, "str_a", "brd_1");
    const sent = [a.send([part(0, 0, 0)]), a.send([part(0, 1, 1)]), a.send([part(0, 2, 2)]), a.send([part(0, 3, 3)])];
    await Promise.all(sent);
    const uris = e.got.flatMap((x) => x.updates.map((u) => (u.type === "part" ? u.uri : u.type)));
    expect(uris).toEqual(["part0.m4s", "part1.m4s", "part2.m4s", "part3.m4s"]);
    // the first went alone; the three queued behind it left together
    expect(e.got.map((x) => x.updates.length)).toEqual([1, 3]);
    expect(e.got.map((x) => x.seq)).toEqual([1, 2]);
    a.close();
  });

  it("sends again after a failure (5xx), and gives up on a refusal (4xx)", async () => {
    const e = await edge((n) => (n <= 2 ? 503 : 200));
    const a = new EdgeAnnouncer({ edgeUrl: e.url, secrets: [SECRET], timeoutMs: 2000, log: quiet, retryBaseMs: 5 }, "str_a", "brd_1");
    await a.send([part(0, 0, 0)]);
    expect(e.requests()).toBe(3);
    expect(e.got).toHaveLength(1);
    const refusing = await edge(() => 400);
    const b = new EdgeAnnouncer({ edgeUrl: refusing.url, secrets: [SECRET], timeoutMs: 2000, log: quiet }, "str_a", "brd_1");
    await expect(b.send([part(0, 0, 0)])).rejects.toBeInstanceOf(AnnounceRefusedError);
    // a forged signature is a refusal too
    const c = new EdgeAnnouncer({ edgeUrl: e.url, secrets: ["not-the-secret-0123456789"], timeoutMs: 2000, log: quiet }, "str_a", "brd_1");
    await expect(c.send([part(0, 0, 0)])).rejects.toThrow(/401/);
  });

  it("never sends what the shared schema refuses, and drops what is queued when closed", async () => {
    const e = await edge(() => 503);
    const a = new EdgeAnnouncer({ edgeUrl: e.url, secrets: [SECRET], timeoutMs: 2000, log: quiet, retryBaseMs: 5 }, "str_a", "brd_1");
    await expect(a.send([{ ...part(0, 0, 0), uri: "../escape.m4s" } as LlUpdate])).rejects.toThrow(/schema/);
    const pending = a.send([part(0, 0, 0)]);
    a.close();
    await expect(pending).rejects.toThrow(/closed/);
  });
});
