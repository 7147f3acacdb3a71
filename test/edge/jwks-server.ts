// A real JWKS endpoint on 127.0.0.1 and a free port, for Node-side tests of RS256/ES256 verification
// against the edge under wrangler dev. Counts fetches so tests can see the edge caches the key set.
import { createServer } from "node:http";
import type { JWK } from "jose";
import { freePort } from "../helpers/ports.ts";

export interface JwksServer {
  url: string;
  /** how many times the key set was fetched */
  fetches(): number;
  /** replace the served keys (key rotation) */
  setKeys(keys: JWK[]): void;
  stop(): Promise<void>;
}

export async function startJwksServer(keys: JWK[]): Promise<JwksServer> {
  let served = keys;
  let count = 0;
  const server = createServer((req, res) => {
    if (req.url !== "/.well-known/jwks.json") {
      res.writeHead(404).end();
      return;
    }
    count++;
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: served }));
  });
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    fetches: () => count,
    setKeys: (k) => (served = k),
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
