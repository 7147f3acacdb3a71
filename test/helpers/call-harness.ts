// A page that carries the client library (test/web/call-harness.ts bundled by esbuild), served on 127.0.0.1 by a
// small server of its own, so call tests can run several room and call clients in one page with options the call
// page does not offer. (Served from a loopback origin: Chromium lets a loopback page reach the loopback edge; a
// page Playwright fulfils itself counts as public and is refused local network access.)
import { createServer } from "node:http";
import { join } from "node:path";
import { ROOT } from "./edge.ts";

export interface HarnessServer {
  url: string;
  close(): Promise<void>;
}

export async function startHarness(): Promise<HarnessServer> {
  const esbuild = await import("esbuild");
  const built = await esbuild.build({ entryPoints: [join(ROOT, "test/web/call-harness.ts")], bundle: true, write: false, format: "esm", platform: "browser", target: "chrome110" });
  const js = built.outputFiles[0]!.text;
  const server = createServer((req, res) => {
    if (req.url === "/h.js") return void res.writeHead(200, { "content-type": "text/javascript" }).end(js);
    res.writeHead(200, { "content-type": "text/html" }).end('<!doctype html><title>harness</title><script type="module" src="/h.js"></script>');
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
