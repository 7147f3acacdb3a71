// A TCP proxy on 127.0.0.1 that a test can cut: every open connection dropped at once (no close frame, as a
// network failure does), and new ones refused until it is let through again. Browsers reach the edge through it.
import { createServer, type Server, type Socket, connect } from "node:net";
import { freePort } from "./ports.ts";

export interface CuttableProxy {
  url: string;
  port: number;
  /** destroys every open connection; with `hold`, refuses new ones until restore() */
  cut(opts?: { hold?: boolean }): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<CuttableProxy> {
  const port = await freePort();
  const open = new Set<Socket>();
  let holding = false;
  const server: Server = createServer((client) => {
    if (holding) return void client.destroy();
    const upstream = connect(targetPort, "127.0.0.1");
    open.add(client);
    open.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    cut(opts = {}) {
      holding = opts.hold ?? false;
      for (const s of open) s.destroy();
      open.clear();
    },
    restore() {
      holding = false;
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
