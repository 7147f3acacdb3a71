// A stand-in for the edge's announcement route, for media-node tests that look at announcements themselves: a
// real HTTP server on 127.0.0.1 that checks the Standard Webhooks signature and the shared schema exactly as the
// edge does, records every announcement with the time it arrived, and runs a check at arrival (tests use it to
// see that what is announced is already stored).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type LlAnnounce, parseAnnounce } from "../../shared/llhls/announce.ts";
import { verifyWebhook } from "../../shared/signing/webhooks.ts";

export interface ReceivedAnnounce {
  at: number;
  announce: LlAnnounce;
}

export interface AnnounceReceiver {
  url: string;
  received: ReceivedAnnounce[];
  /** requests refused (bad signature or schema), with the reason */
  refused: string[];
  /** called for each accepted announcement before it is answered; a throw is recorded in `problems` */
  onAnnounce?: (a: LlAnnounce) => void | Promise<void>;
  problems: string[];
  close(): Promise<void>;
}

export async function startAnnounceReceiver(secret: string): Promise<AnnounceReceiver> {
  const received: ReceivedAnnounce[] = [];
  const refused: string[] = [];
  const problems: string[] = [];
  const receiver: Partial<AnnounceReceiver> = { received, refused, problems };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const verified = await verifyWebhook([secret], req.headers as Record<string, string>, body);
      if (!verified.ok) {
        refused.push(verified.reason);
        res.writeHead(401).end();
        return;
      }
      const parsed = parseAnnounce(JSON.parse(body));
      if (!parsed.ok) {
        refused.push(parsed.error);
        res.writeHead(400).end();
        return;
      }
      const at = Date.now();
      try {
        await receiver.onAnnounce?.(parsed.announce);
      } catch (error) {
        problems.push((error as Error).message);
      }
      received.push({ at, announce: parsed.announce });
      res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${port}`;
  receiver.close = () => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  });
  return receiver as AnnounceReceiver;
}
